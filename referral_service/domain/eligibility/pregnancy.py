"""Pregnancy (criteria sections 0 and 8 item 10): the latest pregnancy evidence within a window
(a pregnancy-status Observation, a qualitative hCG result, a weeks-of-gestation or pregnant
Condition), or a pregnancy Condition."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import Finding, known
from referral_service.domain.facts import ICD10_CM, SNOMED, ConditionFact, ObservationFact

PREGNANT, NOT_PREGNANT = "pregnant", "not-pregnant"


class Evidence(NamedTuple):
    """One piece of pregnancy evidence: its answer, its time, its resource, and what it is in
    plain words for the reasons ("" for a pregnancy-status Observation, the usual kind)."""

    answer: str  # PREGNANT or NOT_PREGNANT
    when: datetime | None
    ref: str
    words: str


def describe(evidence: Evidence) -> str:
    """'pregnant', or 'not-pregnant (negative urine hCG 2 days ago)'."""
    return f"{evidence.answer} ({evidence.words})" if evidence.words else evidence.answer


def latest_status(chart: Chart, days: float) -> Evidence | None:
    """The latest pregnancy evidence of any kind within `days`. An answer of unknown is no
    status at all, so an older definite answer still speaks; a tie goes to pregnant."""
    best: Evidence | None = None
    for evidence in chart.once("pregnancy-evidence", _every_evidence):
        if not chart.within_days(evidence.when, days):
            continue
        if best is None or (evidence.when, evidence.answer == PREGNANT) > (  # type: ignore[operator]
            best.when,
            best.answer == PREGNANT,
        ):
            best = evidence
    return best


def _every_evidence(chart: Chart) -> list[Evidence]:
    found = []
    if chart.coded_observations:
        found += _observed(chart)
    for cond in chart.conditions_with(chart.policy.code_sets["pregnancy_status_conditions"]):
        when = _dated(cond)
        words = f"Condition {_code_words(cond)}{_age(chart, when)}"
        found.append(Evidence(PREGNANT, when, cond.ref, words))
    return found


def _observed(chart: Chart) -> list[Evidence]:
    """Pregnancy-status Observations and qualitative hCG results."""
    obs_codes = chart.policy.observations
    found = []
    for obs in chart.coded_observations_of(obs_codes["pregnancy_status"]):
        answer = _status_answer(obs, obs_codes)
        if answer is not None:
            found.append(Evidence(answer, obs.when, obs.ref, ""))
    for kind, specimen in (("hcg_urine", "urine"), ("hcg_serum", "serum")):
        for obs in chart.coded_observations_of(obs_codes[kind]):
            answer = _test_answer(obs, obs_codes)
            if answer is not None:
                result = "positive" if answer == PREGNANT else "negative"
                words = f"{result} {specimen} hCG{_age(chart, obs.when)}"
                found.append(Evidence(answer, obs.when, obs.ref, words))
    return found


def _status_answer(obs: ObservationFact, obs_codes: dict[str, frozenset[str]]) -> str | None:
    if obs.value_code is None:  # (entered-in-error and cancelled never reach the Chart index)
        return None
    for code in obs.value_code.codes:
        if code.system == SNOMED and code.code in obs_codes["pregnant"]:
            return PREGNANT
        if code.system == SNOMED and code.code in obs_codes["not_pregnant"]:
            return NOT_PREGNANT
    return None


def _test_answer(obs: ObservationFact, obs_codes: dict[str, frozenset[str]]) -> str | None:
    """A qualitative test: positive or negative by SNOMED answer, by valueString (any case)
    or by interpretation; when its parts disagree, positive (the safer reading)."""
    results = set()
    for code in obs.value_code.codes if obs.value_code is not None else ():
        if code.system == SNOMED:
            results.add(_result(code.code, obs_codes, "test_positive", "test_negative"))
    text = obs.value_text.lower()
    if text:
        results.add(_result(text, obs_codes, "test_positive_words", "test_negative_words"))
    for code in obs.interpretation:
        results.add(
            _result(
                code.code, obs_codes, "test_positive_interpretation", "test_negative_interpretation"
            )
        )
    if PREGNANT in results:
        return PREGNANT
    return NOT_PREGNANT if NOT_PREGNANT in results else None


def _result(
    value: str, obs_codes: dict[str, frozenset[str]], positive: str, negative: str
) -> str | None:
    if value in obs_codes[positive]:
        return PREGNANT
    return NOT_PREGNANT if value in obs_codes[negative] else None


def _dated(cond: ConditionFact) -> datetime | None:
    """The latest date a Condition carries: the pregnancy was known then."""
    dates = [d for d in (cond.onset, cond.recorded) if d is not None]
    return max(dates) if dates else None


def _code_words(cond: ConditionFact) -> str:
    for code in cond.code.codes:
        if code.system == ICD10_CM and len(code.code) > 3:
            return f"{code.code[:3]}.{code.code[3:]}"
        if code.system in (ICD10_CM, SNOMED):
            return f"{code.code} ({code.display})" if code.display else code.code
    return cond.code.text


def _age(chart: Chart, when: datetime | None) -> str:
    if when is None:
        return ", undated"
    days = int(chart.days_ago(when))
    if days < 1:
        return " today" if days == 0 else " (dated after the referral)"
    return f" {days} day{'s' if days != 1 else ''} ago"


def pregnant(chart: Chart) -> Finding:
    return chart.once("pregnant", _pregnant)


def _pregnant(chart: Chart) -> Finding:
    status = latest_status(chart, chart.policy.windows["pregnancy_status_days"])
    if status is not None and status.answer == PREGNANT:
        return known(True, "pregnancy status: " + describe(status), (status.ref,))
    codes = chart.policy.code_sets
    coded = chart.coded(codes["pregnancy"])
    if coded:
        return known(True, "a pregnancy Condition is recorded", coded)
    # An undated weeks-of-gestation or pregnant Condition (or reasonCode) cannot be placed in
    # a window: like a pregnancy Condition, it counts (the safer reading, clinical-decisions.md)
    evidence = codes["pregnancy_status_conditions"]
    undated = [c.ref for c in chart.conditions_with(evidence) if not _dated(c)]
    if chart.reasons and chart.reason_codes_with(evidence):
        undated.append(chart.facts.ref)
    if undated:
        return known(True, "an undated pregnancy Condition is recorded", tuple(undated))
    return _NOT_KNOWN_PREGNANT


_NOT_KNOWN_PREGNANT = known(False, "not known to be pregnant")
