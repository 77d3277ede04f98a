"""Headache categories (criteria section 3): by code, or by metrics held long enough."""

from __future__ import annotations

from datetime import timedelta

from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import (
    MET,
    NOT_MET,
    Finding,
    all_of,
    at_least,
    known,
    new_finding,
    unknown,
)
from referral_service.domain.eligibility.medications import acute_overuse, failed_at_least
from referral_service.domain.facts import ObservationFact
from referral_service.domain.policy import CodeSet

MISSING = {
    "headache_days": missing.HEADACHE_DAYS,
    "migraine_days": missing.MIGRAINE_DAYS,
    "debilitating_days": missing.DEBILITATING_DAYS,
}


# (category id, its finding): a plain tuple, cheaper to build than a NamedTuple.
CategoryResult = tuple[str, Finding]


def headache_coded(chart: Chart) -> Finding:
    """Step 3: any headache-family code (Condition or reasonCode)."""
    refs = chart.coded(chart.policy.code_sets["headache_family"])
    return known(
        bool(refs), "headache diagnosis coded" if refs else "no headache diagnosis code", refs
    )


def evaluate_categories(chart: Chart) -> list[CategoryResult]:
    """Every category rule in naming order, then `episodic` (any other headache code)."""
    results: list[CategoryResult] = []
    counted_mask = chart.counted_mask
    for category in chart.policy.categories:
        name = category.id
        refs = chart.coded(category.codes) if category.codes.bit & counted_mask else ()
        if refs:
            finding = new_finding((MET, "coded " + name, refs, ()))
        else:  # code or metrics: with no code, the metrics decide
            by_metrics = _METRIC_RULES.get(name)
            if by_metrics is not None:
                finding = by_metrics(chart)
            else:
                finding = new_finding((NOT_MET, f"no {name} code", (), ()))
        results.append((name, finding))
    results.append(("episodic", _episodic(chart)))
    return results


def _episodic(chart: Chart) -> Finding:
    codes = chart.policy.code_sets
    refs = _coded_outside(chart, codes["headache_family"], codes["nonspecific_headache"])
    return known(
        bool(refs), "migraine or headache code" if refs else "only nonspecific headache", refs
    )


def _coded_outside(chart: Chart, within: CodeSet, outside: CodeSet) -> tuple[str, ...]:
    """Evidence refs of counted Conditions and reasonCodes in `within` with no code `outside`."""
    refs = [c.ref for c in chart.conditions_outside(within, outside)]
    if chart.reasons and chart.reason_codes_outside(within, outside):
        refs.append(chart.facts.ref)
    return tuple(dict.fromkeys(refs))


def _metric(chart: Chart, name: str, limit_key: str) -> tuple[Finding, ObservationFact | None]:
    obs = chart.metric(name)
    if obs is None:
        return unknown(f"no {_WHAT[name]}", MISSING[name]), None
    return at_least(
        obs.value, chart.policy.thresholds[limit_key], _WHAT[name], MISSING[name], (obs.ref,)
    ), obs


_WHAT = {name: name.replace("_", " ") + "/month" for name in MISSING}


def _held(chart: Chart, *metrics: ObservationFact | None) -> Finding:
    """'For > 3 months': a metric counted over >= 90 days, or a headache begun > 90 days ago;
    not met when both are known and shorter; unknown otherwise."""
    days = chart.policy.thresholds["chronic_duration_days"]
    spans = False
    long_refs = []
    for m in metrics:
        if m is not None and m.period_start is not None and m.period_end is not None:
            spans = True
            if (m.period_end - m.period_start) / _DAY >= days:
                long_refs.append(m.ref)
    if long_refs:
        return known(True, f"counted over >= {days} days", tuple(long_refs))
    earliest = chart.headache_onset()
    if earliest is not None:
        onset, ref = earliest
        if chart.days_ago(onset) > days:
            return known(True, f"headache began over {days} days ago", (ref,))
        if spans:
            return known(False, f"held for under {days} days", (ref,))
    return unknown("duration unknown", missing.DURATION)


_DAY = timedelta(days=1)


def _migraine_coded(chart: Chart) -> Finding:
    """Any migraine code but the periodic syndromes, which name only `episodic` (cc §8 item 8)."""
    codes = chart.policy.code_sets
    refs = _coded_outside(chart, codes["migraine"], codes["periodic_syndromes"])
    return known(bool(refs), "" if refs else "no migraine code", refs)


def _refractory(chart: Chart) -> Finding:
    debilitating, obs = _metric(chart, "debilitating_days", "debilitating_days_refractory")
    failed = failed_at_least(chart, int(chart.policy.thresholds["failed_classes_refractory"]))
    return all_of(_migraine_coded(chart), failed, debilitating, _held(chart, obs))


def _medication_overuse(chart: Chart) -> Finding:
    headache, obs = _metric(chart, "headache_days", "headache_days_chronic")
    acute = chart.metric("acute_medication_days")
    return all_of(headache, acute_overuse(chart), _held(chart, obs, acute))


def _chronic_migraine(chart: Chart) -> Finding:
    headache, h_obs = _metric(chart, "headache_days", "headache_days_chronic")
    migraine, m_obs = _metric(chart, "migraine_days", "migraine_days_chronic")
    return all_of(_migraine_coded(chart), headache, migraine, _held(chart, h_obs, m_obs))


_METRIC_RULES = {
    "refractory-migraine": _refractory,
    "medication-overuse": _medication_overuse,
    "chronic-migraine": _chronic_migraine,
}
METRIC_CATEGORIES = frozenset(_METRIC_RULES)  # the categories also met by metrics
