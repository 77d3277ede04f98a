"""Normalized clinical facts about one referral: what the eligibility engine reads.

Plain frozen dataclasses, no FHIR library. Every fact carries the reference string of the
resource it came from (``Condition/abc``, ``#contained-id``, ``urn:uuid:...``) as evidence.
Datetimes are timezone-aware; the FHIR edge (``referral_service.fhir.facts``) builds these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10: its own codes, not ICD-10-CM's
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"


def normalize_code(system: str, code: str) -> str:
    """ICD-10 codes (CM and WHO) compare without the dot and in upper case; others exactly."""
    code = code.strip()
    if system in (ICD10_CM, WHO_ICD10):
        return code.replace(".", "").upper()
    return code


@dataclass(frozen=True, slots=True)
class Code:
    system: str
    code: str
    display: str = ""

    @classmethod
    def of(cls, system: str, code: str, display: str = "") -> Code:
        return cls(system, normalize_code(system, code), display)


@dataclass(frozen=True, slots=True)
class Concept:
    """A CodeableConcept: codings plus free text."""

    codes: tuple[Code, ...] = ()
    text: str = ""

    def names(self) -> tuple[str, ...]:
        """Lower-cased human-readable names (coding displays and text)."""
        found = [c.display.lower() for c in self.codes if c.display]
        if self.text:
            found.append(self.text.lower())
        return tuple(found)

    def code_in(self, system: str) -> str | None:
        for code in self.codes:
            if code.system == system:
                return code.code
        return None


@dataclass(frozen=True, slots=True)
class PatientFacts:
    ref: str
    birth_date: date | None = None
    sex: str | None = None  # administrative gender: male | female | other | unknown


@dataclass(frozen=True, slots=True)
class ConditionFact:
    ref: str
    code: Concept
    clinical_status: str | None = None
    verification_status: str | None = None
    onset: datetime | None = None  # onsetDateTime, onsetPeriod.start or birthDate + onsetAge
    recorded: datetime | None = None
    notes: tuple[str, ...] = ()

    @property
    def onset_or_recorded(self) -> datetime | None:
        return self.onset if self.onset is not None else self.recorded


@dataclass(frozen=True, slots=True)
class ObservationComponent:
    code: Concept
    value: float | None = None
    unit: str = ""
    value_code: Concept | None = None


@dataclass(frozen=True, slots=True)
class ObservationFact:
    """An Observation; temperatures are already in Cel at the edge."""

    ref: str
    code: Concept
    status: str | None = None
    value: float | None = None
    unit: str = ""
    value_code: Concept | None = None
    components: tuple[ObservationComponent, ...] = ()
    effective: datetime | None = None  # effectiveDateTime, else effectivePeriod.end
    period_start: datetime | None = None
    period_end: datetime | None = None
    issued: datetime | None = None
    value_text: str = ""  # valueString
    interpretation: tuple[Code, ...] = ()

    @property
    def when(self) -> datetime | None:
        return self.effective if self.effective is not None else self.issued


@dataclass(frozen=True, slots=True)
class DosageFact:
    """One Dosage (MedicationStatement.dosage, MedicationRequest.dosageInstruction)."""

    texts: tuple[str, ...] = ()  # text, patientInstruction, timing.code's text and codes
    period_days: float | None = None  # timing.repeat.period in days
    frequency: float | None = None  # timing.repeat.frequency (absent: once a period)
    as_needed: bool = False  # asNeededBoolean true, or an asNeeded reason
    route: Concept | None = None


@dataclass(frozen=True, slots=True)
class MedicationFact:
    ref: str
    kind: str  # MedicationStatement | MedicationRequest | MedicationAdministration
    medication: Concept  # the code, or a referenced Medication's code and ingredient items
    status: str | None = None
    effective: datetime | None = None  # effectiveDateTime (or authoredOn for a request)
    period_start: datetime | None = None
    period_end: datetime | None = None
    status_reasons: tuple[str, ...] = ()
    medication_ref: str | None = None  # the Medication resource that named it, if any
    form: Concept | None = None  # that Medication's dose form
    dosages: tuple[DosageFact, ...] = ()
    # A MedicationRequest's dispenseRequest: validityPeriod, and expectedSupplyDuration in days
    # with numberOfRepeatsAllowed
    validity_start: datetime | None = None
    validity_end: datetime | None = None
    supply_days: float | None = None
    repeats: int = 0


@dataclass(frozen=True, slots=True)
class AllergyFact:
    ref: str
    substance: Concept
    verification_status: str | None = None
    clinical_status: str | None = None


@dataclass(frozen=True, slots=True)
class EncounterFact:
    ref: str
    class_code: str | None = None


@dataclass(frozen=True, slots=True)
class DiagnosticReportFact:
    ref: str
    categories: tuple[Code, ...] = ()
    status: str | None = None
    when: datetime | None = None  # effectiveDateTime / effectivePeriod.end, else issued


@dataclass(frozen=True, slots=True)
class UnreadableReference:
    """A reference the ServiceRequest makes that was neither in hand nor read from the EHR:
    missing data for the rules that read what it may point to (cc §8 item 13)."""

    ref: str
    kinds: frozenset[str] = frozenset()  # the resource types it may be; empty: any


@dataclass(frozen=True, slots=True)
class FreeText:
    text: str
    ref: str


@dataclass(frozen=True, slots=True)
class ReferralFacts:
    referral: str  # "system|value" of the first identifier, else the id
    ref: str  # the ServiceRequest reference, evidence for its own fields
    now: datetime  # authoredOn, else the time of intake
    # Ages are whole years on the date of `now` in the clinic's time zone (cc §8 item 7)
    time_zone: tzinfo = UTC
    reference_date: date | None = None  # that date (a date-only authoredOn: itself); None: derive
    patient: PatientFacts | None = None
    requested: Concept | None = None  # ServiceRequest.code
    priority: str | None = None
    reason_codes: tuple[Concept, ...] = ()
    free_texts: tuple[FreeText, ...] = ()  # reasonCode.text and ServiceRequest.note
    conditions: tuple[ConditionFact, ...] = ()
    observations: tuple[ObservationFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    encounters: tuple[EncounterFact, ...] = ()
    reports: tuple[DiagnosticReportFact, ...] = ()
    unreadable: tuple[UnreadableReference, ...] = ()
