"""The EHR's Schedules and Slots, one Slot at a time: the infusion Schedules, Slots held and
freed with If-Match (tagged with the holding Appointment), Appointment status changes that re-read
on a version conflict. The series booking (`ehr_schedule.py`, `series_steps.py`) uses them where
the EHR has no transactions (visit by visit, compensating cancels), and the hold sweep frees
abandoned holds with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import (
    EhrConflict,
    EhrDataError,
    EhrNotFound,
)
from referral_service.adapters.ehr.headers import etag
from referral_service.domain.scheduling.slots import FreeSlot
from referral_service.fhir import scheduling as fs

Resource = dict[str, Any]
PAGE_SIZE = "200"
MAX_CONTESTED = 40  # lost races per attempt before handing back to the worker's backoff


def infusion_schedules(ehr: FhirClient, configured: tuple[str, ...]) -> dict[str, Resource]:
    """Schedule id -> chair Reference, for the configured Schedules or every infusion one."""
    if configured:
        schedules = [ehr.read("Schedule", sid) for sid in configured]
    else:
        # No server-side service-type filter: codes differ between EHRs, so match here.
        found = ehr.search("Schedule", {"_count": PAGE_SIZE})
        schedules = [s for s in found if fs.is_infusion_schedule(s) and s.get("active", True)]
    try:
        return {str(s["id"]): fs.schedule_chair(s) for s in schedules}
    except fs.FhirSchedulingError as exc:
        raise EhrDataError(str(exc)) from exc


def parse_slots(slots: dict[str, Resource]) -> list[FreeSlot]:
    known: dict[Any, Any] = {}  # the Slots' shared times and Schedule references
    try:
        return [fs.slot_from_fhir(slot, known) for slot in slots.values()]
    except fs.FhirSchedulingError as exc:
        raise EhrDataError(f"unusable Slot from the EHR: {exc}") from exc


def update_fresh(
    ehr: FhirClient,
    resource: Resource,
    change: Callable[[Resource], Resource],
    done: Callable[[Resource], bool],
) -> Resource:
    """PUT change(resource) with If-Match; on a version conflict re-read and try again."""
    for _ in range(3):
        if done(resource):
            return resource
        try:
            return ehr.update(change(resource), if_match=etag(resource))
        except EhrConflict:
            resource = ehr.read(resource["resourceType"], resource["id"])
    raise EhrConflict(f"{resource['resourceType']}/{resource['id']} keeps changing under us")


def hold_slot(
    ehr: FhirClient, slot: Resource, holder: str, *, retry: bool = True
) -> Resource | None:
    """Mark a Slot busy for `holder`; the held Slot, or None when someone else has it."""
    if slot.get("status") == "busy":
        return slot if fs.slot_holder(slot) == holder else None
    if slot.get("status") != "free":
        return None
    try:
        return ehr.update(fs.held_slot(slot, holder), if_match=etag(slot))
    except EhrConflict:
        pass
    except EhrNotFound:
        return None
    # Lost the race, or our own earlier PUT landed and its reply was lost: the Slot says which.
    try:
        current = ehr.read("Slot", str(slot["id"]))
    except EhrNotFound:
        return None
    if current.get("status") == "free" and retry:
        return hold_slot(ehr, current, holder, retry=False)  # freed again since our search
    mine = current.get("status") == "busy" and fs.slot_holder(current) == holder
    return current if mine else None


def hold_all(
    ehr: FhirClient, slots: list[Resource], holder: str
) -> tuple[list[Resource], str | None]:
    """Hold every Slot or stop at the first taken one: (the ones held, the taken one's id)."""
    held: list[Resource] = []
    for slot in slots:
        taken = hold_slot(ehr, slot, holder)
        if taken is None:
            return held, str(slot["id"])
        held.append(taken)
    return held, None


def release(ehr: FhirClient, slots: list[Resource], holder: str) -> None:
    """Free the Slots that `holder` holds; others' Slots are left alone."""
    for slot in slots:
        try:
            update_fresh(
                ehr,
                slot,
                fs.freed_slot,
                lambda s: s.get("status") != "busy" or fs.slot_holder(s) != holder,
            )
        except EhrNotFound:
            continue


def read_slots(ehr: FhirClient, appointment: Resource) -> list[Resource]:
    return _read_slot_ids(ehr, fs.appointment_slot_ids(appointment))


def _read_slot_ids(ehr: FhirClient, slot_ids: Iterable[str]) -> list[Resource]:
    slots = []
    for sid in slot_ids:
        try:
            slots.append(ehr.read("Slot", sid))
        except EhrNotFound:
            continue
    return slots


def set_status(ehr: FhirClient, appointment: Resource, status: str) -> Resource:
    return update_fresh(
        ehr, appointment, lambda a: fs.with_status(a, status), lambda a: a.get("status") == status
    )


def booked_by_others(ehr: FhirClient, slot_ids: tuple[str, ...], holder: str) -> set[str]:
    """The Slots another booked Appointment uses. Some EHRs book Appointments without marking
    their Slots busy, so a Slot's status alone cannot tell."""
    refs = ",".join(f"Slot/{sid}" for sid in slot_ids)
    used: set[str] = set()
    for other in ehr.search("Appointment", {"slot": refs, "status": "booked"}):
        if f"Appointment/{other['id']}" != holder and other.get("status") == "booked":
            used.update(set(slot_ids) & set(fs.appointment_slot_ids(other)))
    return used


def cancel(ehr: FhirClient, appointment: Resource) -> Resource:
    """Cancel first, then free its Slots: never a booked Appointment without its Slots."""
    cancelled = set_status(ehr, appointment, "cancelled")
    release(ehr, read_slots(ehr, cancelled), f"Appointment/{cancelled['id']}")
    return cancelled
