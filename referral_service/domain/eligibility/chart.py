"""The Chart: one referral's facts indexed once per evaluation for the rules to query."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from referral_service.domain.eligibility.medication_records import as_record
from referral_service.domain.facts import (
    LOINC,
    AllergyFact,
    Concept,
    ConditionFact,
    MedicationFact,
    ObservationFact,
    ReferralFacts,
)
from referral_service.domain.policy import CodeSet, DrugList, Policy

_SKIPPED_OBSERVATIONS = frozenset({"entered-in-error", "cancelled"})
_NEVER = float("-inf")
_DAY = timedelta(days=1)
_UNSET = object()


# A numeric Observation value or component: (value, when, ref). A plain tuple, not a
# NamedTuple: a referral has a dozen of these and a tuple costs a third to build.
Reading = tuple[float, datetime | None, str]


def whole_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


class Chart:
    """Built afresh by every evaluation (nothing in it outlives one): Conditions, reasonCodes,
    medications and allergies with the masks of the code sets they are in and their drug ids,
    and Observations by code."""

    __slots__ = (
        "facts",
        "policy",
        "now",
        "age",
        "counted",
        "history",
        "counted_mask",
        "reasons",
        "meds",
        "allergies",
        "med_ids",
        "allergy_ids",
        "readings",
        "metrics",
        "coded_observations",
        "memo",
    )
    facts: ReferralFacts
    policy: Policy
    now: datetime
    age: int | None  # whole years on the reference date (now's date in the clinic's zone)
    # Conditions and reasonCodes with the mask of the policy's code sets they are in
    counted: list[tuple[ConditionFact, int]]
    history: list[tuple[ConditionFact, int]]
    counted_mask: int  # every code set any counted Condition or reasonCode is in
    reasons: list[tuple[Concept, int]]
    meds: list[tuple[MedicationFact, frozenset[str]]]
    allergies: list[tuple[AllergyFact, frozenset[str]]]
    med_ids: set[str]  # every drug id any medication names
    allergy_ids: set[str]
    readings: dict[str, list[Reading]]
    metrics: dict[str, ObservationFact]
    coded_observations: dict[str, list[ObservationFact]]
    memo: dict[str, Any]

    def __init__(self, facts: ReferralFacts, policy: Policy) -> None:
        self.facts = facts
        self.policy = policy
        self.now = now = facts.now
        patient = facts.patient
        birth = patient.birth_date if patient is not None else None
        today = facts.reference_date or now.astimezone(facts.time_zone).date()
        self.age = None if birth is None else whole_years(birth, today)
        self.memo = {}
        self._index_conditions(facts, policy)
        self._index_drugs(facts, policy)
        self._index_observations(facts, policy.metrics["system"])

    def _index_conditions(self, facts: ReferralFacts, policy: Policy) -> None:
        refuted, active = policy.refuted_statuses, policy.active_statuses
        mask_of = policy.code_index.mask
        self.history = history = []
        self.counted = counted = []
        counted_mask = 0
        for cond in facts.conditions:
            if cond.verification_status in refuted:
                continue
            mask = mask_of(cond.code)
            entry = (cond, mask)
            history.append(entry)
            if cond.clinical_status is None or cond.clinical_status in active:
                counted.append(entry)
                counted_mask |= mask
        self.reasons = reasons = []
        for reason in facts.reason_codes:
            mask = mask_of(reason)
            reasons.append((reason, mask))
            counted_mask |= mask
        self.counted_mask = counted_mask

    def _index_drugs(self, facts: ReferralFacts, policy: Policy) -> None:
        drug_ids = policy.drug_index.drug_ids
        records = policy.medication_records
        self.meds = meds = []
        med_ids: set[str] = set()
        self.med_ids = med_ids
        for med in facts.medications:
            ids = drug_ids(med.medication)
            if ids:  # (a record naming no drug of the policy counts for nothing anyway)
                record = as_record(med, ids, records, self.now)
                if record is not None:
                    meds.append(record)
                    med_ids |= record[1]
        refuted = policy.refuted_statuses
        self.allergies = allergies = []
        allergy_ids: set[str] = set()
        self.allergy_ids = allergy_ids
        for allergy in facts.allergies:
            if allergy.verification_status not in refuted:
                ids = drug_ids(allergy.substance)
                if ids and not records.substance_counts_for_nothing(allergy.substance):
                    allergies.append((allergy, ids))
                    allergy_ids |= ids

    def _index_observations(self, facts: ReferralFacts, metric_system: str) -> None:
        readings: dict[str, list[Reading]] = {}
        metrics: dict[str, ObservationFact] = {}
        coded: dict[str, list[ObservationFact]] = {}
        self.readings, self.metrics, self.coded_observations = readings, metrics, coded
        for obs in facts.observations:
            if obs.status in _SKIPPED_OBSERVATIONS:
                continue
            when = obs.effective if obs.effective is not None else obs.issued
            for code in obs.code.codes:
                system = code.system
                if system == metric_system:
                    held = metrics.get(code.code)
                    if held is None or _recency(obs) > _recency(held):
                        metrics[code.code] = obs
                elif system == LOINC:
                    if obs.value is not None:
                        readings.setdefault(code.code, []).append((obs.value, when, obs.ref))
                    elif obs.value_code is not None or obs.value_text or obs.interpretation:
                        coded.setdefault(code.code, []).append(obs)
            for comp in obs.components:
                if comp.value is None:
                    continue
                for code in comp.code.codes:
                    if code.system == LOINC:  # the first LOINC coding names the component
                        readings.setdefault(code.code, []).append((comp.value, when, obs.ref))
                        break

    def once(self, key: str, compute: Callable[[Chart], Any]) -> Any:
        """A finding several rules share (pregnancy, failed classes), computed once."""
        found = self.memo.get(key, _UNSET)
        if found is _UNSET:
            found = self.memo[key] = compute(self)
        return found

    # --- time -------------------------------------------------------------------------------
    def days_ago(self, when: datetime) -> float:
        return (self.now - when) / _DAY

    def within_days(self, when: datetime | None, days: float) -> bool:
        """On or after `days` before now (later readings count too)."""
        return when is not None and (self.now - when) / _DAY <= days

    def age_on(self, when: datetime) -> int | None:
        patient = self.facts.patient
        if patient is None or patient.birth_date is None:
            return None
        return whole_years(patient.birth_date, when.astimezone(self.facts.time_zone).date())

    # --- conditions --------------------------------------------------------------------------
    def conditions_with(self, codes: CodeSet) -> list[ConditionFact]:
        bit = codes.bit
        if not bit & self.counted_mask:
            return []  # the common case: nothing in this set at all
        return [c for c, mask in self.counted if mask & bit]

    def history_with(self, codes: CodeSet) -> list[ConditionFact]:
        bit = codes.bit
        return [c for c, mask in self.history if mask & bit]

    def conditions_outside(self, within: CodeSet, outside: CodeSet) -> list[ConditionFact]:
        """Counted Conditions coded in `within` with no code in `outside`."""
        bit, other = within.bit, outside.bit
        return [c for c, mask in self.counted if mask & bit and not mask & other]

    def reason_codes_outside(self, within: CodeSet, outside: CodeSet) -> list[Concept]:
        bit, other = within.bit, outside.bit
        return [r for r, mask in self.reasons if mask & bit and not mask & other]

    def reason_codes_with(self, codes: CodeSet) -> list[Concept]:
        bit = codes.bit
        return [r for r, mask in self.reasons if mask & bit]

    def coded(self, codes: CodeSet) -> tuple[str, ...]:
        """Evidence refs of counted Conditions and reasonCodes in a code set."""
        bit = codes.bit
        if not bit & self.counted_mask:
            return ()
        refs = []
        for cond, mask in self.counted:
            if mask & bit:
                refs.append(cond.ref)
        for _, mask in self.reasons:
            if mask & bit:
                refs.append(self.facts.ref)
                break
        return tuple(refs) if len(refs) < 2 else tuple(dict.fromkeys(refs))

    def headache_onset(self) -> tuple[datetime, str] | None:
        """The earliest known onset (else recordedDate) of a headache-family Condition."""
        return self.once("headache-onset", _headache_onset)

    # --- observations ------------------------------------------------------------------------
    def readings_of(self, codes: frozenset[str]) -> list[Reading]:
        readings = self.readings
        found: list[Reading] = []
        for code in codes:
            if code in readings:
                found += readings[code]
        return found

    def coded_observations_of(self, codes: frozenset[str]) -> list[ObservationFact]:
        """Observations with a qualitative answer (valueCodeableConcept, valueString or an
        interpretation) and no number, by LOINC code."""
        coded = self.coded_observations
        found: list[ObservationFact] = []
        for code in codes:
            if code in coded:
                found += coded[code]
        return found

    def metric(self, name: str) -> ObservationFact | None:
        return self.metrics.get(self.policy.metrics[name])

    # --- medications -------------------------------------------------------------------------
    def medications(self, drugs: DrugList) -> list[MedicationFact]:
        if drugs.ids.isdisjoint(self.med_ids):
            return []
        return [m for m, ids in self.meds if not drugs.ids.isdisjoint(ids)]

    def allergies_to(self, drugs: DrugList) -> list[AllergyFact]:
        """AllergyIntolerances naming one of the drugs (refuted ones left out)."""
        if drugs.ids.isdisjoint(self.allergy_ids):
            return []
        return [a for a, ids in self.allergies if not drugs.ids.isdisjoint(ids)]

    def active_medications(self, drugs: DrugList) -> list[MedicationFact]:
        statuses = self.policy.medication_active_statuses
        return [m for m in self.medications(drugs) if m.status is None or m.status in statuses]

    def active_records(self, drugs: DrugList) -> list[tuple[MedicationFact, frozenset[str]]]:
        """The active medications naming one of the drugs, each with the drug ids it names."""
        if drugs.ids.isdisjoint(self.med_ids):
            return []
        statuses = self.policy.medication_active_statuses
        return [
            (m, ids)
            for m, ids in self.meds
            if not drugs.ids.isdisjoint(ids) and (m.status is None or m.status in statuses)
        ]


def _recency(obs: ObservationFact) -> tuple[float, float, float]:
    """Latest wins: by effective time, then issued (an absent time sorts first); a full tie
    goes to the higher value, so the order resources arrive in never matters."""
    when = obs.effective.timestamp() if obs.effective else _NEVER
    issued = obs.issued.timestamp() if obs.issued else _NEVER
    return when, issued, obs.value if obs.value is not None else _NEVER


def _headache_onset(chart: Chart) -> tuple[datetime, str] | None:
    earliest = None
    for cond in chart.conditions_with(chart.policy.code_sets["headache_family"]):
        when = cond.onset_or_recorded
        if when is not None and (earliest is None or when < earliest[0]):  # the first of ties
            earliest = (when, cond.ref)
    return earliest
