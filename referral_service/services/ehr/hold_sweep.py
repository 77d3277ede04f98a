"""The hold sweep: frees EHR Slots the service marked busy for an Appointment that no longer
lists them (a booking that moved on, was cancelled, or whose worker died between steps).

Bookings place the Appointment (listing its Slots) before holding any Slot, so a Slot read as
held and then its Appointment read afresh tells the truth: not listed means not booked there.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from referral_service.adapters.ehr import slots as eb
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrNotFound, EhrUnavailable
from referral_service.fhir import scheduling as fs
from referral_service.observability import metrics
from referral_service.services.jobs import Job, JobKind, RetryLater

log = logging.getLogger(__name__)
SWEEP_MINUTES = 10
_LIVE = ("proposed", "pending", "booked", "arrived", "fulfilled", "checked-in", "waitlist")


def sweep_holds(ehr: FhirClient, schedule_ids: list[str]) -> int:
    """Free every busy Slot of the schedules held for an Appointment that does not list it;
    the number freed (also counted by reason in referral_ehr_holds_freed_total)."""
    if not schedule_ids:
        return 0
    schedules = ",".join(f"Schedule/{sid}" for sid in schedule_ids)
    busy = ehr.search("Slot", {"status": "busy", "schedule": schedules, "_count": eb.PAGE_SIZE})
    freed = 0
    for slot in busy:
        holder = fs.slot_holder(slot)
        if slot.get("status") != "busy" or not holder or not holder.startswith("Appointment/"):
            continue  # not ours: another system's booking
        reason = _why_stale(ehr, holder, str(slot["id"]))
        if reason is None:
            continue
        eb.release(ehr, [slot], holder)
        metrics.ehr_holds_freed(reason)
        freed += 1
    return freed


def _why_stale(ehr: FhirClient, holder: str, slot_id: str) -> str | None:
    """Why the hold is stale ("appointment-gone", "not-listed"), or None when it is not."""
    try:
        appointment = ehr.read("Appointment", holder.split("/", 1)[1])
    except EhrNotFound:
        return "appointment-gone"
    if appointment.get("status") not in _LIVE or slot_id not in fs.appointment_slot_ids(
        appointment
    ):
        return "not-listed"
    return None


def schedule_next(uow: Any, now: datetime) -> None:
    """Queue the sweep of the next period (one job per period, whoever asks first)."""
    period = timedelta(minutes=SWEEP_MINUTES).total_seconds()
    index = int(now.timestamp() // period) + 1
    uow.jobs.add(
        JobKind.EHR_HOLD_SWEEP,
        now=now,
        dedupe_key=f"{JobKind.EHR_HOLD_SWEEP}:{index}",
        run_after=datetime.fromtimestamp(index * period, tz=now.tzinfo),
    )


def run_sweep(runtime: Any, job: Job) -> str:
    """The `ehr-hold-sweep` job: sweep, count, and queue the next period's."""
    ehr = runtime.ehr_client
    if ehr is None:
        return "skipped (no EHR)"
    try:
        schedules = list(eb.infusion_schedules(ehr, runtime.settings.ehr_schedules))
        freed = sweep_holds(ehr, schedules)
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc
    if freed:
        log.warning("hold sweep freed %d EHR Slots no Appointment listed", freed)
    with runtime.unit_of_work() as uow:
        schedule_next(uow, runtime.now())
    return f"freed {freed}"
