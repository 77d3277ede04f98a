"""The schedule of the clinic EHR (Schedules and Slots), one adapter of the booking port.

One Appointment per referral, Slots held with If-Match.

The Appointment is created (status `pending`, conditional on our identifier) before any Slot is
touched, so a crash at any step leaves something a retry finds by identifier. Slots are marked
busy one by one with If-Match and tagged with the holding Appointment; losing a race on any Slot
releases the ones we took and moves the same Appointment to the next candidate. Only when every
Slot is held does the Appointment become `booked`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import (
    EhrConflict,
    EhrDataError,
    EhrNotFound,
    EhrUnavailable,
)
from referral_service.adapters.ehr.headers import etag
from referral_service.domain.scheduling.booking import (
    NO_SLOT,
    BookingOutcome,
    BookingRequest,
    outcome_of,
)
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.slots import Candidate, FreeSlot, ehr_candidates
from referral_service.domain.scheduling.window import BookingWindow, search_horizons
from referral_service.fhir import scheduling as fs

Resource = dict[str, Any]
PAGE_SIZE = "200"
MAX_CONTESTED = 40  # lost races per attempt before handing back to the worker's backoff


def find_our_appointment(ehr: FhirClient, referral_id: str) -> Resource | None:
    """Our Appointment for the referral; a live one wins over a cancelled one."""
    token = fs.appointment_token(referral_id)
    found = [  # re-checked here: a server that ignores the parameter would return everything
        a
        for a in ehr.search("Appointment", {"identifier": token})
        if any(f"{i.get('system')}|{i.get('value')}" == token for i in a.get("identifier", []))
    ]
    live = [a for a in found if a.get("status") not in ("cancelled", "entered-in-error")]
    chosen = live or found
    return chosen[0] if chosen else None


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


def free_slots(
    ehr: FhirClient, schedule_ids: list[str], window: BookingWindow
) -> dict[str, Resource]:
    """Free Slots starting inside the window, by id."""
    params = {
        "status": "free",
        "start": [f"ge{fs.fhir_instant(window.opens)}", f"lt{fs.fhir_instant(window.closes)}"],
        "_count": PAGE_SIZE,
    }
    # One search for all chairs (a comma is FHIR's OR within a parameter), not one per chair.
    wanted = set(schedule_ids)
    schedules = ",".join(f"Schedule/{sid}" for sid in schedule_ids)
    found: dict[str, Resource] = {}
    for slot in ehr.search("Slot", {**params, "schedule": schedules}):
        # Re-checked here rather than trusting every server's search implementation.
        schedule = fs.reference_id((slot.get("schedule") or {}).get("reference"), "Schedule")
        if slot.get("status") == "free" and schedule in wanted:
            found[str(slot["id"])] = slot
    return found


def parse_slots(slots: dict[str, Resource]) -> list[FreeSlot]:
    try:
        return [fs.slot_from_fhir(slot) for slot in slots.values()]
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


def place(ehr: FhirClient, appointment: Resource | None, content: Resource) -> Resource:
    """Create our pending Appointment, or move the existing one to `content`'s time and Slots."""
    if appointment is None:
        identifier = content["identifier"][0]["value"]
        created = ehr.create(content, if_none_exist=fs.appointment_query(identifier))
        if created.get("slot") == content.get("slot") and created.get("status") == "pending":
            return created
        appointment = created  # an earlier attempt's Appointment: move it instead

    replaced: list[str] = []

    def moved(current: Resource) -> Resource:
        replaced[:] = fs.appointment_slot_ids(current)
        return {**content, "id": current["id"], "meta": current.get("meta", {})}

    placed = update_fresh(ehr, appointment, moved, lambda a: False)
    # Holds of the run it left are not the booked position: free them now, not never.
    left = set(replaced) - set(fs.appointment_slot_ids(placed))
    release(ehr, _read_slot_ids(ehr, sorted(left)), f"Appointment/{placed['id']}")
    return placed


def booked_by_others(ehr: FhirClient, slot_ids: tuple[str, ...], holder: str) -> set[str]:
    """The Slots another booked Appointment uses. Some EHRs book Appointments without marking
    their Slots busy, so a Slot's status alone cannot tell."""
    refs = ",".join(f"Slot/{sid}" for sid in slot_ids)
    used: set[str] = set()
    for other in ehr.search("Appointment", {"slot": refs, "status": "booked"}):
        if f"Appointment/{other['id']}" != holder and other.get("status") == "booked":
            used.update(set(slot_ids) & set(fs.appointment_slot_ids(other)))
    return used


def _hold_run(ehr: FhirClient, slots: list[Resource], holder: str) -> set[str]:
    """Hold every Slot of a run for `holder`, or none: the Slots found taken (empty = held)."""
    held, failed = hold_all(ehr, slots, holder)
    taken = (
        {failed} if failed else booked_by_others(ehr, tuple(str(s["id"]) for s in slots), holder)
    )
    if taken:
        release(ehr, held, holder)
    return taken


def book_first_free(
    ehr: FhirClient,
    appointment: Resource | None,
    candidates: list[Candidate],
    slots: dict[str, Resource],
    content: Callable[[Candidate], Resource],
) -> tuple[Resource | None, bool]:
    """Try candidates in order: (our Appointment, booked?). Runs through a Slot already seen
    taken are skipped without a request; after MAX_CONTESTED lost races, retry later."""
    taken: set[str] = set()
    contested = 0
    for candidate in candidates:
        if taken.intersection(candidate.slot_ids):
            continue
        if contested >= MAX_CONTESTED:
            raise EhrUnavailable(f"{contested} slot races lost in one attempt; retry later")
        appointment = place(ehr, appointment, content(candidate))
        lost = _hold_run(
            ehr, [slots[sid] for sid in candidate.slot_ids], f"Appointment/{appointment['id']}"
        )
        if not lost:
            return set_status(ehr, appointment, "booked"), True
        taken |= lost
        contested += 1
    return appointment, False


def resume_existing(ehr: FhirClient, appointment: Resource) -> Resource | None:
    """Finish (or undo) an earlier attempt: the booked Appointment, or None if it lost its Slots."""
    slots = read_slots(ehr, appointment)
    complete = len(slots) == len(fs.appointment_slot_ids(appointment))
    if slots and complete and not _hold_run(ehr, slots, f"Appointment/{appointment['id']}"):
        return set_status(ehr, appointment, "booked")
    return None


def cancel(ehr: FhirClient, appointment: Resource) -> Resource:
    """Cancel first, then free its Slots: never a booked Appointment without its Slots."""
    cancelled = set_status(ehr, appointment, "cancelled")
    release(ehr, read_slots(ehr, cancelled), f"Appointment/{cancelled['id']}")
    return cancelled


def candidates(
    ehr: FhirClient,
    schedules: dict[str, Resource],
    window: BookingWindow,
    duration: timedelta,
    zone: tzinfo,
) -> tuple[list[Candidate], dict[str, Resource]]:
    slots = free_slots(ehr, list(schedules), window)
    return ehr_candidates(parse_slots(slots), window, duration, zone), slots


@dataclass(frozen=True)
class HeldAppointment:
    """What booking on the EHR came to: our booked Appointment there, or None (no slot)."""

    request: BookingRequest
    protocol: Protocol
    appointment: Resource | None


class EhrSchedule:
    """The schedule of the clinic EHR: its infusion Schedules and their free Slots."""

    def __init__(self, ehr: FhirClient, clinic: Clinic, schedule_ids: tuple[str, ...]) -> None:
        self.ehr = ehr
        self.clinic = clinic
        self.schedule_ids = schedule_ids

    def find(
        self, request: BookingRequest, window: BookingWindow, protocol: Protocol, now: datetime
    ) -> HeldAppointment:
        """Book on the EHR (network only; our row is written by `record`)."""
        ehr = self.ehr
        existing = find_our_appointment(ehr, request.referral_id)
        if existing is not None and existing.get("status") in ("pending", "booked"):
            resumed = resume_existing(ehr, existing)
            if resumed is not None:
                return HeldAppointment(request, protocol, resumed)
        schedules, appointment = infusion_schedules(ehr, self.schedule_ids), existing
        for horizon in search_horizons(window, protocol.duration) if schedules else ():
            found, slots = candidates(ehr, schedules, horizon, protocol.duration, self.clinic.zone)
            appointment, booked = book_first_free(
                ehr,
                appointment,
                found,
                slots,
                lambda c: _content(request, protocol, c, schedules[c.chair_id]),
            )
            if booked and appointment is not None:
                return HeldAppointment(request, protocol, appointment)
        if appointment is not None and appointment.get("status") != "cancelled":
            cancel(ehr, appointment)  # no pending Appointment left behind a no-slot
        return HeldAppointment(request, protocol, None)

    def record(self, uow: SqlUnitOfWork, held: HeldAppointment, now: datetime) -> BookingOutcome:
        """Write (or refresh) our row for the Appointment that lives on the EHR."""
        appointment = held.appointment
        if appointment is None:
            return NO_SLOT
        times = fs.appointment_times(appointment)
        values = {
            "status": appointment["status"],
            "chair_id": fs.appointment_chair(appointment) or "",
            "protocol": held.protocol.name,
            "start": times.start,
            "end": times.end,
            "ehr_reference": f"Appointment/{appointment['id']}",
            "resource": appointment,
            "last_updated": now,
        }
        request = held.request
        for _ in range(2):
            row = uow.appointments.for_referral(request.referral_id)
            try:
                with uow.savepoint():
                    if row is None:
                        uow.appointments.add(
                            {
                                "id": uuid.uuid4().hex,
                                "version_id": 1,
                                "referral_id": request.referral_id,
                                "sender": request.sender,
                                **values,
                            }
                        )
                    else:
                        uow.appointments.update(
                            row["id"], {**values, "version_id": row["version_id"] + 1}
                        )
            except KeyTaken:
                continue  # inserted concurrently: the second round updates it
            return outcome_of(uow.appointments.for_referral(request.referral_id) or {})
        raise RuntimeError(f"cannot record the appointment of referral {request.referral_id}")

    def release(self, referral_id: str, row: Mapping[str, Any] | None) -> Resource | None:
        """Cancel the referral's Appointment on the EHR; None when the EHR holds none."""
        appointment = self._appointment(row, referral_id)
        return cancel(self.ehr, appointment) if appointment is not None else None

    def _appointment(self, row: Mapping[str, Any] | None, referral_id: str) -> Resource | None:
        appointment_id = fs.reference_id((row or {}).get("ehr_reference"), "Appointment")
        if appointment_id:
            try:
                return self.ehr.read("Appointment", appointment_id)
            except EhrNotFound:
                return None
        return find_our_appointment(self.ehr, referral_id)


def _content(
    request: BookingRequest, protocol: Protocol, candidate: Candidate, chair: Resource
) -> Resource:
    return fs.build_appointment(
        referral_id=request.referral_id,
        service_request_ref=request.service_request_ref,
        patient_ref=request.patient_ref,
        patient=dict(request.patient) if request.patient is not None else None,
        chair=chair,
        start=candidate.start,
        end=candidate.end,
        protocol=protocol.name,
        slot_ids=candidate.slot_ids,
        status="pending",
    )
