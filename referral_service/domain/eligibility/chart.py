"""The Chart: one referral's facts indexed once per evaluation for the rules to query."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from referral_service.domain.facts import (
    LOINC,
    AllergyFact,
    Concept,
    ConditionFact,
    MedicationFact,
    ObservationFact,
    ReferralFacts,
)
from referral_service.domain.policy import CodeSet, DrugList, Policy, concept_keys

_SKIPPED_OBSERVATIONS = frozenset({"entered-in-error", "cancelled"})
_NEVER = float("-inf")
_DAY = timedelta(days=1)
_UNSET = object()


class Reading(NamedTuple):
    value: float
    when: datetime | None
    ref: str


_reading = partial(tuple.__new__, Reading)  # Reading((value, when, ref)), no Python frame


def whole_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


@dataclass
class Chart:
    facts: ReferralFacts
    policy: Policy
    now: datetime
    counted: list[tuple[ConditionFact, frozenset[str]]] = field(default_factory=list)
    history: list[tuple[ConditionFact, frozenset[str]]] = field(default_factory=list)
    counted_keys: set[str] = field(default_factory=set)
    reasons: list[tuple[Concept, frozenset[str]]] = field(default_factory=list)
    meds: list[tuple[MedicationFact, frozenset[str]]] = field(default_factory=list)
    allergies: list[tuple[AllergyFact, frozenset[str]]] = field(default_factory=list)
    med_ids: frozenset[str] = frozenset()  # every drug id any medication names
    allergy_ids: frozenset[str] = frozenset()
    readings: dict[str, list[Reading]] = field(default_factory=dict)
    metrics: dict[str, ObservationFact] = field(default_factory=dict)
    coded_observations: dict[str, list[ObservationFact]] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, facts: ReferralFacts, policy: Policy) -> Chart:
        chart = cls(facts, policy, facts.now)
        refuted, active = policy.refuted_statuses, policy.active_statuses
        history, counted, counted_keys = chart.history, chart.counted, chart.counted_keys
        for cond in facts.conditions:
            if cond.verification_status in refuted:
                continue
            entry = (cond, concept_keys(cond.code))
            history.append(entry)
            if cond.clinical_status is None or cond.clinical_status in active:
                counted.append(entry)
                counted_keys |= entry[1]
        chart.reasons = [(r, concept_keys(r)) for r in facts.reason_codes]
        for reason in chart.reasons:
            counted_keys |= reason[1]
        drug_ids = policy.drug_index.drug_ids
        chart.meds = [(m, drug_ids(m.medication)) for m in facts.medications]
        chart.allergies = [
            (a, drug_ids(a.substance))
            for a in facts.allergies
            if a.verification_status not in refuted
        ]
        chart.med_ids = frozenset().union(*[ids for _, ids in chart.meds])
        chart.allergy_ids = frozenset().union(*[ids for _, ids in chart.allergies])
        metric_system = policy.metrics["system"]
        for obs in facts.observations:
            if obs.status not in _SKIPPED_OBSERVATIONS:
                chart._index(obs, metric_system)
        return chart

    def _index(self, obs: ObservationFact, metric_system: str) -> None:
        when = obs.effective if obs.effective is not None else obs.issued
        for code in obs.code.codes:
            if code.system == metric_system:
                held = self.metrics.get(code.code)
                if held is None or _recency(obs) > _recency(held):
                    self.metrics[code.code] = obs
            elif code.system == LOINC and obs.value is not None:
                self.readings.setdefault(code.code, []).append(_reading((obs.value, when, obs.ref)))
            elif code.system == LOINC and obs.value_code is not None:
                self.coded_observations.setdefault(code.code, []).append(obs)
        for comp in obs.components:
            if comp.value is None:
                continue
            for code in comp.code.codes:
                if code.system == LOINC:  # the first LOINC coding names the component
                    self.readings.setdefault(code.code, []).append(
                        _reading((comp.value, when, obs.ref))
                    )
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

    @property
    def age(self) -> int | None:
        patient = self.facts.patient
        if patient is None or patient.birth_date is None:
            return None
        return whole_years(patient.birth_date, self.now.date())

    def age_on(self, when: datetime) -> int | None:
        patient = self.facts.patient
        if patient is None or patient.birth_date is None:
            return None
        return whole_years(patient.birth_date, when.date())

    # --- conditions --------------------------------------------------------------------------
    def conditions_with(self, codes: CodeSet) -> list[ConditionFact]:
        if codes.keys.isdisjoint(self.counted_keys):
            return []  # the common case: nothing in this set at all
        return [c for c, keys in self.counted if not codes.keys.isdisjoint(keys)]

    def history_with(self, codes: CodeSet) -> list[ConditionFact]:
        return [c for c, keys in self.history if not codes.keys.isdisjoint(keys)]

    def conditions_outside(self, within: CodeSet, outside: CodeSet) -> list[ConditionFact]:
        """Counted Conditions coded in `within` with no code in `outside`."""
        return [
            c
            for c, keys in self.counted
            if not within.keys.isdisjoint(keys) and outside.keys.isdisjoint(keys)
        ]

    def reason_codes_outside(self, within: CodeSet, outside: CodeSet) -> list[Concept]:
        return [
            r
            for r, keys in self.reasons
            if not within.keys.isdisjoint(keys) and outside.keys.isdisjoint(keys)
        ]

    def reason_codes_with(self, codes: CodeSet) -> list[Concept]:
        if not self.reasons:
            return []
        return [r for r, keys in self.reasons if not codes.keys.isdisjoint(keys)]

    def coded(self, codes: CodeSet) -> tuple[str, ...]:
        """Evidence refs of counted Conditions and reasonCodes in a code set."""
        wanted = codes.keys
        if wanted.isdisjoint(self.counted_keys):
            return ()
        refs = []
        for cond, keys in self.counted:
            if not wanted.isdisjoint(keys):
                refs.append(cond.ref)
        if self.reasons and self.reason_codes_with(codes):
            refs.append(self.facts.ref)
        return tuple(dict.fromkeys(refs))

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
        """Observations with a coded answer (valueCodeableConcept), by LOINC code."""
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


def _recency(obs: ObservationFact) -> tuple[float, float, float]:
    """Latest wins: by effective time, then issued (an absent time sorts first); a full tie
    goes to the higher value, so the order resources arrive in never matters."""
    when = obs.effective.timestamp() if obs.effective else _NEVER
    issued = obs.issued.timestamp() if obs.issued else _NEVER
    return when, issued, obs.value if obs.value is not None else _NEVER


def _headache_onset(chart: Chart) -> tuple[datetime, str] | None:
    onsets = [
        (c.onset_or_recorded, c.ref)
        for c in chart.conditions_with(chart.policy.code_sets["headache_family"])
        if c.onset_or_recorded is not None
    ]
    return min(onsets, key=lambda pair: pair[0]) if onsets else None  # type: ignore[return-value]
