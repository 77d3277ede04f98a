"""Medication records as the rules read them (criteria section 8 items 1-3): which records
count at all, a MedicationRequest's status and the days it covered, the drug ids its dosing
adds, and the plain words a reason uses for the new kinds of evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from referral_service.domain.facts import MedicationFact
from referral_service.domain.medication_policy import MedicationRecords

_DAY = timedelta(days=1)
REQUEST = "MedicationRequest"


def as_record(
    med: MedicationFact, ids: frozenset[str], records: MedicationRecords, now: datetime
) -> tuple[MedicationFact, frozenset[str]] | None:
    """The record and its drug ids as the rules see them; None when it counts for nothing
    (an eye drop, a cream, a flush; a cancelled, draft or entered-in-error prescription)."""
    if records.counts_for_nothing(med):
        return None
    if med.kind == REQUEST:
        if med.status in records.request_ignored:
            return None
        if med.status == "active" and med.validity_end is not None and med.validity_end < now:
            med = replace(med, status="completed")  # 14(g): its validity ended before now
    dosed = records.dosed_preventives
    if not dosed.keys().isdisjoint(ids) and records.dosed_every_other_day(med):
        ids = ids | {dosed[drug] for drug in ids if drug in dosed}
    return med, ids


def covered_days(med: MedicationFact) -> float | None:
    """8.1: the days a prescription covered: its validityPeriod, or its expected supply times
    (1 + repeats), whichever is longer (14(g)); None when it says neither."""
    spans = []
    if med.validity_start is not None and med.validity_end is not None:
        spans.append((med.validity_end - med.validity_start) / _DAY)
    if med.supply_days is not None:
        spans.append(med.supply_days * (1 + med.repeats))
    return max(spans) if spans else None


def request_trial_failed(med: MedicationFact, trial_days: float, ended: frozenset[str]) -> bool:
    """8.1: a stopped or completed prescription with a statusReason, or that covered at least
    the trial's days."""
    if med.status not in ended:
        return False
    if med.status_reasons:
        return True
    days = covered_days(med)
    return days is not None and days >= trial_days


def is_new_evidence(med: MedicationFact, ids: frozenset[str], records: MedicationRecords) -> bool:
    """Evidence the criteria before revision 2026-12 did not read: a prescription, a Medication
    reference, a brand name, or a dosing that makes a drug a preventive. Reasons name it."""
    return (
        med.kind == REQUEST
        or med.medication_ref is not None
        or not ids.isdisjoint(records.dosed_ids)
        or records.named_by_brand(med.medication)
    )


def describe(
    med: MedicationFact,
    drugs: frozenset[str] | set[str],
    records: MedicationRecords,
    course: bool = True,
) -> str:
    """In plain words: "stopped for side effects after 3 months: topiramate (MedicationRequest)",
    or without the course "rimegepant every other day (nurtec, MedicationStatement via
    Medication #med)"."""
    names = ", ".join(sorted(d.replace("-", " ") for d in drugs))
    source = [*records.brands_in(med.medication), med.kind]
    if med.medication_ref is not None:
        source[-1] += f" via Medication {med.medication_ref}"
    named = f"{names} ({', '.join(source)})"
    how = _course(med) if course else ""
    return f"{how}: {named}" if how else named


def _course(med: MedicationFact) -> str:
    if med.kind != REQUEST:
        days = None
        if med.period_start is not None and med.period_end is not None:
            days = (med.period_end - med.period_start) / _DAY
    else:
        days = covered_days(med)
    span = f" after {_span(days)}" if days is not None else ""
    if med.status_reasons:
        return f"stopped for {', '.join(med.status_reasons)}{span}"
    if span and med.kind == REQUEST:
        span += " of supply"
    return f"{med.status or 'recorded'}{span}"


def _span(days: float) -> str:
    months = days / 30
    if days >= 60 and abs(months - round(months)) < 0.05:
        return f"{round(months)} months"
    return f"{days:.0f} days"
