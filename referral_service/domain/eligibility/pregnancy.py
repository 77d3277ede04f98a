"""Pregnancy (criteria section 0): a recent pregnancy status, or a pregnancy Condition."""

from __future__ import annotations

from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import Finding, known
from referral_service.domain.facts import SNOMED, ObservationFact


def latest_status(chart: Chart, days: float) -> tuple[str, ObservationFact] | None:
    """The latest pregnancy status within `days`: 'pregnant' or 'not-pregnant'. An answer of
    unknown is no status at all, so an older definite answer still speaks."""
    obs_codes = chart.policy.observations
    best: tuple[str, ObservationFact] | None = None
    for obs in chart.coded_observations_of(obs_codes["pregnancy_status"]):
        answer = _answer(obs, obs_codes)
        if answer is None or not chart.within_days(obs.when, days):
            continue
        if best is None or (obs.when, answer == "pregnant") > (  # type: ignore[operator]
            best[1].when,
            best[0] == "pregnant",
        ):  # a tie goes to "pregnant"
            best = (answer, obs)
    return best


def _answer(obs: ObservationFact, obs_codes: dict[str, frozenset[str]]) -> str | None:
    if obs.value_code is None:  # (entered-in-error and cancelled never reach the Chart index)
        return None
    for code in obs.value_code.codes:
        if code.system == SNOMED and code.code in obs_codes["pregnant"]:
            return "pregnant"
        if code.system == SNOMED and code.code in obs_codes["not_pregnant"]:
            return "not-pregnant"
    return None


def pregnant(chart: Chart) -> Finding:
    return chart.once("pregnant", _pregnant)


def _pregnant(chart: Chart) -> Finding:
    status = latest_status(chart, chart.policy.windows["pregnancy_status_days"])
    if status is not None and status[0] == "pregnant":
        return known(True, "pregnancy status: pregnant", (status[1].ref,))
    coded = chart.coded(chart.policy.code_sets["pregnancy"])
    if coded:
        return known(True, "a pregnancy Condition is recorded", coded)
    return _NOT_KNOWN_PREGNANT


_NOT_KNOWN_PREGNANT = known(False, "not known to be pregnant")
