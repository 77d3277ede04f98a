"""Medication history (criteria sections 4 and 6): failed preventive classes, acute
medication overuse, and the triptan/ergot washout before DHE."""

from __future__ import annotations

from datetime import datetime, timedelta

from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import (
    MET,
    NOT_MET,
    Finding,
    known,
    new_finding,
    unknown,
)
from referral_service.domain.eligibility.medication_records import (
    REQUEST,
    describe,
    is_new_evidence,
    request_trial_failed,
)
from referral_service.domain.facts import MedicationFact

_ENDED = frozenset({"stopped", "completed"})


def failed_preventive_classes(chart: Chart) -> tuple[int | None, Finding]:
    """4.1: distinct preventive classes failed; None (unknown) with no record of any."""
    return chart.once("failed-classes", _failed_classes)


def _failed_classes(chart: Chart) -> tuple[int | None, Finding]:
    policy = chart.policy
    records = policy.medication_records
    class_of = policy.preventive_class_of
    trial_days = policy.thresholds["preventive_trial_days"]
    failed: dict[str, list[str]] = {}
    new_evidence: list[str] = []  # the trials only revision 2026-12 reads, in plain words
    recorded = False
    for med, ids in chart.meds:
        classes = []
        for drug in ids:  # (a loop: cheaper than a comprehension for one or two ids)
            if drug in class_of:
                classes.append(class_of[drug])
        if classes:
            recorded = True
            if _trial_failed(med, trial_days, records.request_ended):
                refs = [med.ref]
                if is_new_evidence(med, ids, records):
                    new_evidence.append(describe(med, ids & class_of.keys(), records))
                    refs += [med.medication_ref] if med.medication_ref else []
                for name in classes:
                    failed.setdefault(name, []).extend(refs)
    for allergy, ids in chart.allergies:  # an allergy to a preventive is a failed trial
        for drug in ids:
            if drug in class_of:
                recorded = True
                failed.setdefault(class_of[drug], []).append(allergy.ref)
    if not recorded:
        return None, _NO_PREVENTIVES
    named = ", ".join([c for c in policy.preventive_classes if c in failed]) or "none"
    evidence: list[str] = []
    for refs in failed.values():
        evidence += refs
    note = "; ".join([f"{len(failed)} failed preventive classes ({named})", *new_evidence])
    return len(failed), new_finding((MET, note, _unique(evidence), ()))


_NO_PREVENTIVES = unknown("no record of any preventive", missing.PREVENTIVES)


def _unique(refs: list[str]) -> tuple[str, ...]:
    """The refs without repeats, in order."""
    return tuple(refs) if len(refs) < 2 else tuple(dict.fromkeys(refs))


def _trial_failed(med: MedicationFact, trial_days: float, request_ended: frozenset[str]) -> bool:
    if med.kind == REQUEST:
        return request_trial_failed(med, trial_days, request_ended)
    if med.kind != "MedicationStatement" or med.status not in _ENDED:
        return False
    if med.status_reasons:
        return True
    if med.period_start is None or med.period_end is None:
        return False
    return (med.period_end - med.period_start) / _DAY >= trial_days


_DAY = timedelta(days=1)


def failed_at_least(chart: Chart, limit: int) -> Finding:
    count, finding = failed_preventive_classes(chart)
    if count is None:
        return finding
    if count >= limit:
        return new_finding((MET, f"{finding.note} (>= {limit})", finding.evidence, ()))
    return new_finding((NOT_MET, f"{finding.note} (< {limit})", finding.evidence, ()))


def acute_overuse(chart: Chart) -> Finding:
    """4.2: one class at or over its threshold, or two or more classes under theirs whose
    days add up to the combined threshold (ICHD-3 8.2.6)."""
    obs = chart.metric("acute_medication_days")
    if obs is None:
        return _NO_ACUTE_DAYS
    days = _days_by_class(chart, obs.components)
    evidence = (obs.ref,)
    over = [c.id for c in chart.policy.acute_classes if days.get(c.id, 0) >= c.days]
    if over:
        return known(True, "acute medication overuse: " + ", ".join(over), evidence)
    used = [d for d in days.values() if d > 0]
    combined = chart.policy.acute_combined_days
    if len(used) >= 2:
        total = sum(used)
        return known(
            total >= combined,
            f"{len(used)} acute classes, {total:g} days combined "
            f"({'>=' if total >= combined else '<'} {combined})",
            evidence,
        )
    if days or obs.value is None:
        return known(False, "no acute medication class over its threshold", evidence)
    return _overuse_from_total(chart, obs.value, evidence)


_NO_ACUTE_DAYS = unknown("acute medication days not reported", missing.ACUTE_MEDICATION)


def _days_by_class(chart: Chart, components: tuple) -> dict[str, float]:  # type: ignore[type-arg]
    system = chart.policy.metrics["system"]
    days: dict[str, float] = {}
    for comp in components:
        if comp.value is None:
            continue
        for code in comp.code.codes:
            if code.system == system:  # the first coding in the metric system names the class
                days[code.code] = days.get(code.code, 0) + comp.value
                break
    return days


def _overuse_from_total(chart: Chart, total: float, evidence: tuple[str, ...]) -> Finding:
    """Only a total, no classes: below every threshold is not overuse; at or over the highest
    single-class threshold is overuse whatever the mix; in between the classes decide."""
    lowest = min([c.days for c in chart.policy.acute_classes] + [chart.policy.acute_combined_days])
    highest = max(c.days for c in chart.policy.acute_classes)
    if total < lowest:
        return known(False, f"{total:g} acute medication days in all", evidence)
    if total >= highest:
        return known(True, f"{total:g} acute medication days in all", evidence)
    return Finding(
        "unknown",
        f"{total:g} acute medication days, classes not given",
        evidence,
        (missing.ACUTE_MEDICATION,),
    )


def washout_until(chart: Chart) -> tuple[datetime | None, tuple[str, ...]]:
    """5: a triptan or ergot taken within 24 h before now delays DHE until 24 h after it."""
    hours = chart.policy.windows["triptan_washout_hours"]
    latest: tuple[datetime, str] | None = None
    for med in chart.medications(chart.policy.washout):
        taken = _dose_time(med)
        if (
            taken is not None
            and chart.days_ago(taken) <= hours / 24
            and (latest is None or taken > latest[0])
        ):  # the first of equal times, like max()
            latest = (taken, med.ref)
    if latest is None:
        return None, ()
    return latest[0] + timedelta(hours=hours), (latest[1],)


def _dose_time(med: MedicationFact) -> datetime | None:
    if med.kind == REQUEST or med.status in (
        "entered-in-error",
        "not-done",
        "not-taken",
    ):
        return None
    return (
        med.effective
        or med.period_end
        or (med.period_start if med.kind == "MedicationAdministration" else None)
    )
