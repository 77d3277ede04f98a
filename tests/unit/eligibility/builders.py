"""FHIR JSON builders for eligibility tests: a referral Bundle built up resource by resource.

The default referral is eligible: a 46-year-old man with chronic migraine (G43.709, begun two
years ago), 20 headache and 12 migraine days a month counted over 120 days. "Now" is the
ServiceRequest's authoredOn, never the wall clock.
"""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from referral_service.domain.decision import Decision
from referral_service.domain.policy import Policy, load_policy
from referral_service.services.assessment.evaluation import evaluate_document

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)  # later than NOW: authoredOn must win
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
WHO = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10, not ICD-10-CM
ICD_OID = "urn:oid:2.16.840.1.113883.6.90"  # ICD-10-CM by its OID
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
METRICS = "https://referral-service.dev/headache-metrics"
PROTOCOL = "https://referral-service.dev/protocol"
POLICY = load_policy(None)
_ids = itertools.count(1)


def ago(days: float = 0, hours: float = 0) -> str:
    return (NOW - timedelta(days=days, hours=hours)).isoformat()


def born(age: int, days_after_birthday: int = 10) -> str:
    """A birth date giving `age` whole years at NOW (birthday passed `days_after_birthday`
    days ago; negative means the birthday is that many days ahead)."""
    birthday = NOW.date() - timedelta(days=days_after_birthday)
    return birthday.replace(year=birthday.year - age).isoformat()


def coding(code: str, system: str = ICD, display: str = "") -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def cc(*codings: dict[str, Any], text: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"coding": list(codings)}
    if text:
        out["text"] = text
    return out


class Referral:
    """A referral Bundle under construction. Methods return self so cases read as one line."""

    def __init__(
        self,
        *,
        age: int | None = 46,
        sex: str = "male",
        headache: str | None = "G43.709",
        headache_onset_days: float | None = 730,
        metrics: bool = True,
    ) -> None:
        self.patient: dict[str, Any] = {"resourceType": "Patient", "gender": sex}
        if age is not None:
            self.patient["birthDate"] = born(age)
        self.request: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "id": "sr-1",
            "status": "active",
            "intent": "order",
            "identifier": [{"system": "urn:clinic", "value": "REF-1"}],
            "subject": {"reference": "urn:uuid:patient"},
            "authoredOn": NOW.isoformat(),
            "reasonReference": [],
        }
        self.entries: list[dict[str, Any]] = []
        self.remote: dict[str, dict[str, Any]] = {}
        self.time_zone: tzinfo = UTC
        if headache is not None:
            self.condition(
                headache, onset_days=headache_onset_days, key="headache", referenced=True
            )
        if metrics:
            self.metric("headache-days-per-month", 20).metric("migraine-days-per-month", 12)

    # --- placement ------------------------------------------------------------------------
    def place(
        self,
        resource: dict[str, Any],
        via: str = "bundle",
        key: str | None = None,
        referenced: bool = False,
    ) -> Referral:
        """via: bundle (urn:uuid entry), bundle-id (Type/id entry), contained, resolver
        (read through the resolver), unresolved (referenced, never found)."""
        key = key or f"r{next(_ids)}"
        rtype = resource["resourceType"]
        if via in ("bundle", "bundle-id"):
            resource.setdefault("subject", {"reference": "urn:uuid:patient"})
            if via == "bundle-id":
                resource["id"] = key
                self.entries.append(
                    {"fullUrl": f"https://ehr.example/fhir/{rtype}/{key}", "resource": resource}
                )
                ref = f"{rtype}/{key}"
            else:
                self.entries.append({"fullUrl": f"urn:uuid:{key}", "resource": resource})
                ref = f"urn:uuid:{key}"
        elif via == "contained":
            resource["id"] = key
            self.request.setdefault("contained", []).append(resource)
            ref, referenced = f"#{key}", True
        else:
            resource["id"] = key
            ref, referenced = f"{rtype}/{key}", True
            if via == "resolver":
                self.remote[ref] = resource
        if referenced:
            field = "reasonReference" if rtype == "Condition" else "supportingInfo"
            self.request.setdefault(field, []).append({"reference": ref})
        return self

    # --- clinical content ---------------------------------------------------------------------
    def condition(
        self,
        code: str,
        system: str = ICD,
        *,
        onset_days: float | None = None,
        recorded_days: float | None = None,
        status: str | None = "active",
        verification: str | None = None,
        note: str | None = None,
        via: str = "bundle",
        key: str | None = None,
        referenced: bool = False,
    ) -> Referral:
        res: dict[str, Any] = {"resourceType": "Condition", "code": cc(coding(code, system))}
        if status:
            res["clinicalStatus"] = cc(
                coding(status, "http://terminology.hl7.org/CodeSystem/condition-clinical")
            )
        if verification:
            res["verificationStatus"] = cc(
                coding(verification, "http://terminology.hl7.org/CodeSystem/condition-ver-status")
            )
        if onset_days is not None:
            res["onsetDateTime"] = ago(onset_days)
        if recorded_days is not None:
            res["recordedDate"] = ago(recorded_days)
        if note:
            res["note"] = [{"text": note}]
        return self.place(res, via, key, referenced)

    def drop_metrics(self) -> Referral:
        self.entries = [
            e
            for e in self.entries
            if e["resource"].get("code", {}).get("coding", [{}])[0].get("system") != METRICS
        ]
        return self

    def metric(
        self,
        code: str,
        value: int,
        *,
        days: float = 120,
        end_days: float = 1,
        components: dict[str, int] | None = None,
        via: str = "bundle",
    ) -> Referral:
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": cc(coding(code, METRICS)),
            "valueInteger": value,
            "effectivePeriod": {"start": ago(end_days + days), "end": ago(end_days)},
        }
        if components is not None:
            res["component"] = [
                {"code": cc(coding(k, METRICS)), "valueInteger": v} for k, v in components.items()
            ]
        return self.place(res, via)

    def acute(self, via: str = "bundle", **days: int) -> Referral:
        classes = {k.replace("_", "-"): v for k, v in days.items()}
        return self.metric(
            "acute-medication-days-per-month", sum(classes.values()), components=classes, via=via
        )

    def vital(
        self, loinc: str, value: float, unit: str, *, hours: float = 2, via: str = "bundle"
    ) -> Referral:
        return self.place(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": cc(coding(loinc, LOINC)),
                "valueQuantity": {
                    "value": value,
                    "unit": unit,
                    "code": unit,
                    "system": "http://unitsofmeasure.org",
                },
                "effectiveDateTime": ago(hours=hours),
            },
            via,
        )

    def temperature(self, value: float, unit: str = "Cel", hours: float = 2) -> Referral:
        return self.vital("8310-5", value, unit, hours=hours)

    def blood_pressure(
        self, systolic: float, diastolic: float, *, days: float = 0, hours: float = 2
    ) -> Referral:
        parts = (("8480-6", systolic), ("8462-4", diastolic))
        return self.place(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": cc(coding("85354-9", LOINC)),
                "component": [
                    {"code": cc(coding(c, LOINC)), "valueQuantity": {"value": v, "unit": "mm[Hg]"}}
                    for c, v in parts
                ],
                "effectiveDateTime": ago(days, hours),
            }
        )

    def egfr(self, value: float, days: float = 5, loinc: str = "98979-8") -> Referral:
        return self.place(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": cc(coding(loinc, LOINC)),
                "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}"},
                "effectiveDateTime": ago(days),
            }
        )

    def pregnancy_status(self, answer: str, days: float = 1) -> Referral:
        snomed = {"pregnant": "77386006", "not-pregnant": "60001007", "unknown": "261665006"}
        return self.place(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": cc(coding("82810-3", LOINC)),
                "valueCodeableConcept": cc(coding(snomed[answer], SCT)),
                "effectiveDateTime": ago(days),
            }
        )

    def hcg(
        self, result: str, days: float = 1, *, specimen: str = "urine", by: str = "code"
    ) -> Referral:
        """A qualitative hCG result (cc §8 item 10): `result` positive, negative or any other
        word, given `by` a SNOMED answer (code), a valueString (string) or an interpretation."""
        loinc = {"urine": "2106-3", "serum": "2118-8"}[specimen]
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": cc(coding(loinc, LOINC)),
            "effectiveDateTime": ago(days),
        }
        if by == "code":
            snomed = {"positive": "10828004", "negative": "260385009"}.get(result.lower(), "0")
            res["valueCodeableConcept"] = cc(coding(snomed, SCT))
        elif by == "string":
            res["valueString"] = result
        else:
            flag = {"positive": "POS", "negative": "NEG"}.get(result.lower(), "IND")
            system = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
            res["interpretation"] = [cc(coding(flag, system))]
        return self.place(res)

    def medication(
        self,
        name: str,
        *,
        rxnorm: str | None = None,
        status: str = "active",
        kind: str = "MedicationStatement",
        start_days: float | None = None,
        end_days: float | None = None,
        reason: str | None = None,
        taken_hours: float | None = None,
        via: str = "bundle",
        dosage: dict[str, Any] | None = None,
        named_by: str | None = None,
    ) -> Referral:
        codings = [coding(rxnorm, RXNORM, name)] if rxnorm else []
        res: dict[str, Any] = {"resourceType": kind, "status": status}
        if named_by is None:
            res["medicationCodeableConcept"] = cc(*codings, text=name)
        else:
            self.name_medication(res, name, named_by)
        if dosage is not None:
            res["dosage"] = [dosage]
        if start_days is not None:
            period = {"start": ago(start_days)}
            if end_days is not None:
                period["end"] = ago(end_days)
            res["effectivePeriod"] = period
        if reason:
            res["statusReason"] = [{"text": reason}]
        if taken_hours is not None:
            res["effectiveDateTime"] = ago(hours=taken_hours)
        return self.place(res, via)

    def prescription(
        self,
        name: str,
        *,
        status: str = "stopped",
        validity_days: float | None = None,
        validity_end_days: float = 10,
        supply: tuple[float, str] | None = None,
        repeats: int | None = None,
        reason: str | None = None,
        dosage: dict[str, Any] | None = None,
        named_by: str | None = None,
    ) -> Referral:
        """A MedicationRequest: validityPeriod of `validity_days` ending `validity_end_days`
        ago, expectedSupplyDuration `supply` (value, UCUM unit), numberOfRepeatsAllowed."""
        res: dict[str, Any] = {"resourceType": "MedicationRequest", "status": status}
        self.name_medication(res, name, named_by)
        dispense: dict[str, Any] = {}
        if validity_days is not None:
            end = validity_end_days
            dispense["validityPeriod"] = {"start": ago(end + validity_days), "end": ago(end)}
        if supply is not None:
            dispense["expectedSupplyDuration"] = {"value": supply[0], "code": supply[1]}
        if repeats is not None:
            dispense["numberOfRepeatsAllowed"] = repeats
        res |= {"dispenseRequest": dispense} if dispense else {}
        res |= {"statusReason": {"text": reason}} if reason else {}
        res |= {"dosageInstruction": [dosage]} if dosage else {}
        return self.place(res)

    def name_medication(self, res: dict[str, Any], name: str, named_by: str | None) -> None:
        """named_by None: medicationCodeableConcept; "contained" / "bundle": a Medication coded
        `name` in the record / the Bundle; "ingredient": a contained Medication with no name of
        its own and `name` as its ingredient item."""
        if named_by is None:
            res["medicationCodeableConcept"] = cc(text=name)
            return
        med: dict[str, Any] = {"resourceType": "Medication", "id": f"m{next(_ids)}"}
        if named_by == "ingredient":
            med |= {
                "code": cc(text="tablet"),
                "ingredient": [{"itemCodeableConcept": cc(text=name)}],
            }
        else:
            med["code"] = cc(text=name)
        if named_by == "bundle":
            self.entries.append({"fullUrl": f"urn:uuid:{med['id']}", "resource": med})
            res["medicationReference"] = {"reference": f"urn:uuid:{med['id']}"}
        else:
            res["contained"] = [med]
            res["medicationReference"] = {"reference": f"#{med['id']}"}

    def failed_preventive(
        self, name: str, rxnorm: str | None = None, trial_days: float = 90
    ) -> Referral:
        return self.medication(
            name, rxnorm=rxnorm, status="stopped", start_days=400, end_days=400 - trial_days
        )

    def allergy(self, name: str) -> Referral:
        return self.place({"resourceType": "AllergyIntolerance", "code": cc(text=name)})

    def from_emergency(
        self,
        *,
        imaging_days: float | None = 1,
        status: str = "final",
        encounter_class: str = "EMER",
        category: str = "RAD",
        imaging_via: str = "bundle",
        referenced: bool = True,
        imaging_subject: str | None = None,
    ) -> Referral:
        """An ED Encounter and an imaging report: by default a Bundle entry the ServiceRequest
        references; `referenced=False` leaves it unreferenced, `imaging_subject` names the
        patient the EHR's way (a reference the Bundle's Patient does not carry)."""
        self.place(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": coding(
                    encounter_class, "http://terminology.hl7.org/CodeSystem/v3-ActCode"
                ),
            },
            key="enc",
        )
        self.request["encounter"] = {"reference": "urn:uuid:enc"}
        if imaging_days is not None:
            report: dict[str, Any] = {
                "resourceType": "DiagnosticReport",
                "status": status,
                "category": [cc(coding(category, "http://terminology.hl7.org/CodeSystem/v2-0074"))],
                "code": cc(coding("24725-4", LOINC)),
                "effectiveDateTime": ago(imaging_days),
            }
            if imaging_subject is not None:
                report["subject"] = {"reference": imaging_subject}
            self.place(report, imaging_via, referenced=referenced)
        return self

    def dangling(self, ref: str, field: str = "supportingInfo") -> Referral:
        """A reference the ServiceRequest makes to nothing in hand or in the EHR."""
        if field == "encounter":
            self.request["encounter"] = {"reference": ref}
        else:
            self.request.setdefault(field, []).append({"reference": ref})
        return self

    def authored(self, when: str) -> Referral:
        """authoredOn ("now") as written: a dateTime with its offset, or a date."""
        self.request["authoredOn"] = when
        return self

    def in_zone(self, name: str) -> Referral:
        """The clinic's time zone (the clinic file's `time_zone`) for this evaluation."""
        self.time_zone = ZoneInfo(name)
        return self

    def protocol(self, name: str) -> Referral:
        self.request["code"] = cc(coding(name, PROTOCOL))
        return self

    def priority(self, value: str) -> Referral:
        self.request["priority"] = value
        return self

    def note(self, text: str) -> Referral:
        self.request.setdefault("note", []).append({"text": text})
        return self

    def reason_code(self, code: str, system: str = ICD, text: str = "") -> Referral:
        self.request.setdefault("reasonCode", []).append(cc(coding(code, system), text=text))
        return self

    # --- output ---------------------------------------------------------------------------------
    def bundle(self) -> dict[str, Any]:
        entries = [
            {"fullUrl": "urn:uuid:sr", "resource": self.request},
            {"fullUrl": "urn:uuid:patient", "resource": self.patient},
            *self.entries,
        ]
        return copy.deepcopy({"resourceType": "Bundle", "type": "transaction", "entry": entries})

    def evaluate(self, policy: Policy = POLICY) -> Decision:
        return evaluate_document(
            self.bundle(),
            policy=policy,
            resolver=self.remote.get,
            received_at=RECEIVED,
            time_zone=self.time_zone,
        )


def reason(decision: Decision, rule: str) -> Any:
    found = [r for r in decision.reasons if r.rule == rule]
    assert found, f"no reason {rule} in {[r.rule for r in decision.reasons]}"
    return found[0]
