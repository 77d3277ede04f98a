"""The EHR requests of a series booking: one batch searching a candidate range, one
transaction booking a whole series (or, without transactions, visit by visit with compensating
cancels), one transaction cancelling it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from referral_service.adapters.ehr import slots as eb
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrConflict, EhrDataError
from referral_service.adapters.ehr.headers import etag
from referral_service.domain.scheduling.booking import BookingRequest
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.rules import Visit
from referral_service.domain.scheduling.series_booking import booked_visits
from referral_service.domain.scheduling.slots import Candidate, ehr_candidates
from referral_service.domain.scheduling.window import BookingWindow
from referral_service.fhir import scheduling as fs

Resource = dict[str, Any]
PAGE_SIZE = "1000"  # one page for a clinic's range: no `_sort` (slow on some EHRs), sorted here
LIVE = ("booked", "pending", "arrived", "checked-in")
# What the planner reads of the range's Appointments (`_elements`): chair, times, status,
# identifiers, protocol and description (it names a repeat course's visits); their contained
# Patient, Slot list and order are neither sent nor decoded. The Slots come whole: the booking
# transaction PUTs them back (a PATCH cannot name the Appointment created in the same
# transaction on every server: docs/scheduling.md).
APPOINTMENT_ELEMENTS = "identifier,status,serviceType,description,start,end,participant"


class BookedEarlier(EhrConflict):
    """The transaction's Appointments already existed: an earlier attempt of ours booked them
    (its reply lost). The Slots this transaction took are freed; `appointments` are those."""

    def __init__(self, appointments: tuple[Resource, ...]) -> None:
        super().__init__("this series was booked by an earlier attempt")
        self.appointments = appointments


def search_range(
    ehr: FhirClient,
    schedule_ids: list[str],
    opens: datetime,
    day_start: datetime,
    closes: datetime,
) -> tuple[dict[str, Resource], list[Resource]]:
    """ONE batch request: the free Slots starting in [opens, closes) on the Schedules, and the
    Appointments starting in [day_start, closes) (the whole first day's load; only the elements
    the planner reads)."""
    wanted = set(schedule_ids)
    slot_query = (
        "Slot?status=free&schedule="
        + ",".join(f"Schedule/{sid}" for sid in schedule_ids)
        + f"&start=ge{_q(opens)}&start=lt{_q(closes)}&_count={PAGE_SIZE}"
    )
    appointment_query = (
        f"Appointment?date=ge{_q(day_start)}&date=lt{_q(closes)}"
        f"&status={','.join(LIVE)}&_count={PAGE_SIZE}&_elements={APPOINTMENT_ELEMENTS}"
    )
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": slot_query}},
            {"request": {"method": "GET", "url": appointment_query}},
        ],
    }
    answer = ehr.transaction(batch, repeatable=True)
    found = [_searchset(entry) for entry in answer.get("entry", [])]
    if len(found) != 2:
        raise EhrDataError("the EHR answered the range search batch without two searchsets")
    free: dict[str, Resource] = {}
    schedules: dict[str, str | None] = {}  # a reference -> its id, read once per Schedule
    for slot in ehr.matches(found[0]):
        reference = str((slot.get("schedule") or {}).get("reference"))
        if reference not in schedules:
            schedules[reference] = fs.reference_id(reference, "Schedule")
        if slot.get("status") == "free" and schedules[reference] in wanted:
            free[str(slot["id"])] = slot
    appointments = [a for a in ehr.matches(found[1]) if a.get("status") in LIVE]
    return free, appointments


def range_offer(
    ehr: FhirClient,
    clinic: Clinic,
    schedules: Mapping[str, Resource],
    referral_id: str,
    protocol: Protocol,
    span: tuple[datetime, datetime, datetime],
    ours: list[Resource] | None = None,
) -> tuple[dict[str, Resource], list[Visit], list[Candidate]]:
    """One range search (`span`: opens, the first day's start, closes) as the planner's input:
    the free Slots by id, the visits booked on the infusion chairs (the referral's own left out,
    and added to `ours` when given) and the free Slots as chair times for `protocol` in
    [opens, closes)."""
    opens, day_start, closes = span
    slots, appointments = search_range(ehr, list(schedules), opens, day_start, closes)
    if ours is not None:
        ours.extend(a for a in appointments if _is_ours(a, referral_id))
    chairs = {str(ref.get("reference")): sid for sid, ref in schedules.items()}
    booked = booked_visits(clinic, load_rows(appointments, chairs, referral_id, protocol.name))
    offered = ehr_candidates(
        eb.parse_slots(slots), BookingWindow(opens, closes), protocol.duration, clinic.zone
    )
    return slots, booked, offered


def _q(at: datetime) -> str:
    return fs.fhir_instant(at).replace("+", "%2B")


def _searchset(entry: Resource) -> Resource:
    status = str((entry.get("response") or {}).get("status", ""))
    resource = entry.get("resource") or {}
    if not status.startswith("2") or resource.get("resourceType") != "Bundle":
        raise EhrDataError(f"a range search in the batch failed: {status or 'no status'}")
    return resource


def load_rows(
    appointments: Sequence[Resource], chairs: Mapping[str, str], referral_id: str, protocol: str
) -> list[dict[str, Any]]:
    """The booked visits on our infusion chairs, as rows the planner's load reads (our own
    referral's left out: a rebooking replaces them)."""
    rows = []
    for appointment in appointments:
        schedule_id = chairs.get(fs.appointment_chair(appointment) or "")
        if schedule_id is None or _is_ours(appointment, referral_id):
            continue
        try:
            times = fs.appointment_times(appointment)
        except fs.FhirSchedulingError:
            continue
        rows.append(
            {
                "chair_id": schedule_id,
                "protocol": _protocol_of(appointment) or protocol,
                "start": times.start,
                "end": times.end,
            }
        )
    return rows


def _protocol_of(appointment: Resource) -> str | None:
    for concept in appointment.get("serviceType", []):
        for coding in concept.get("coding", []):
            if coding.get("system") == fs.PROTOCOL_SYSTEM:
                return coding.get("code")
    return None


def _is_ours(appointment: Resource, referral_id: str) -> bool:
    return any(
        i.get("system") == fs.APPOINTMENT_SYSTEM and i.get("value") == referral_id
        for i in appointment.get("identifier", [])
    )


def content(
    request: BookingRequest,
    protocol: Protocol,
    visit: Visit,
    slot_ids: tuple[str, ...],
    chair: Resource,
    number: tuple[int, int],
    status: str = "booked",
) -> Resource:
    return fs.build_appointment(
        referral_id=request.referral_id,
        service_request_ref=request.ehr_order_ref or request.service_request_ref,
        patient_ref=request.patient_ref,
        patient=dict(request.patient) if request.patient is not None else None,
        chair=chair,
        start=visit.start,
        end=visit.end,
        protocol=protocol.name,
        slot_ids=slot_ids,
        status=status,
        visit=number,
    )


def book_in_one_transaction(
    ehr: FhirClient,
    referral_id: str,
    contents: list[Resource],
    runs: list[list[Resource]],
    first_visit: int = 1,
) -> tuple[Resource, ...]:
    """ONE transaction: every visit's Appointment (numbered from `first_visit`) and every Slot
    busy (ifMatch). EhrConflict when a Slot changed since the search (nothing booked);
    BookedEarlier when the visits were already booked by an earlier attempt of ours."""
    entries: list[Resource] = []
    slot_entries: list[Resource] = []
    for number, (appointment, run) in enumerate(zip(contents, runs, strict=True), first_visit):
        full_url = f"urn:uuid:{uuid.uuid4()}"
        entries.append(
            {
                "fullUrl": full_url,
                "resource": appointment,
                "request": {
                    "method": "POST",
                    "url": "Appointment",
                    "ifNoneExist": fs.visit_query(referral_id, number)
                    + "&status="
                    + ",".join(LIVE),
                },
            }
        )
        for slot in run:
            slot_entries.append(
                {
                    "fullUrl": f"{ehr.base_url}/Slot/{slot['id']}",
                    "resource": fs.held_slot(slot, full_url),
                    "request": {
                        "method": "PUT",
                        "url": f"Slot/{slot['id']}",
                        "ifMatch": etag(slot),
                    },
                }
            )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries + slot_entries}
    answer = ehr.transaction(bundle, repeatable=True)
    results = answer.get("entry", [])
    booked = [e.get("resource") or {} for e in results[: len(contents)]]
    if any(r.get("resourceType") != "Appointment" or "id" not in r for r in booked):
        raise EhrDataError("the EHR's transaction response lacks the Appointments it created")
    created = [str((e.get("response") or {}).get("status", "")).startswith("201") for e in results]
    if not all(created[: len(contents)]):
        # An earlier attempt of ours had booked this series (its reply lost): keep that one,
        # free the Slots this Bundle just took.
        _free_held(ehr, [e.get("resource") or {} for e in results[len(contents) :]])
        raise BookedEarlier(tuple(booked))
    return tuple(booked)


def _free_held(ehr: FhirClient, slots: list[Resource]) -> None:
    for slot in slots:
        if slot.get("resourceType") == "Slot" and slot.get("id"):
            eb.release(ehr, [slot], fs.slot_holder(slot) or "")


def book_one_by_one(
    ehr: FhirClient, contents: list[Resource], runs: list[list[Resource]]
) -> tuple[Resource, ...]:
    """Without transactions: each visit pending, its Slots held (If-Match), then booked; a
    visit that loses a Slot cancels every visit booked before it (compensation)."""
    booked: list[Resource] = []
    for appointment, run in zip(contents, runs, strict=True):
        created = _place_visit(ehr, {**appointment, "status": "pending"})
        holder = f"Appointment/{created['id']}"
        held, failed = eb.hold_all(ehr, run, holder)
        if failed is None and not eb.booked_by_others(
            ehr, tuple(str(s["id"]) for s in run), holder
        ):
            booked.append(eb.set_status(ehr, created, "booked"))
            continue
        eb.release(ehr, held, holder)
        eb.set_status(ehr, created, "cancelled")
        for done in booked:
            eb.cancel(ehr, done)
        return ()
    return tuple(booked)


def _place_visit(ehr: FhirClient, content: Resource) -> Resource:
    """The visit's pending Appointment: created, or an earlier attempt's moved to `content`."""
    visit = content["identifier"][-1]
    query = f"identifier={visit['system']}|{visit['value']}&status=pending,booked"
    created = ehr.create(content, if_none_exist=query)
    if created.get("slot") == content.get("slot") and created.get("status") == "pending":
        return created
    return eb.update_fresh(
        ehr,
        created,
        lambda a: {**content, "id": a["id"], "meta": a.get("meta", {})},
        lambda a: False,
    )


def our_series(ehr: FhirClient, referral_id: str) -> tuple[Resource, ...]:
    """Our live Appointments for the referral, by visit, when they make a whole series."""
    found = [
        a
        for a in ehr.search("Appointment", {"identifier": fs.appointment_token(referral_id)})
        if _is_ours(a, referral_id) and a.get("status") == "booked" and not fs.is_repeat(a)
    ]
    by_visit = {fs.appointment_visit(a): a for a in found}
    visits = _series_length(found)
    if not found or sorted(by_visit) != list(range(1, visits + 1)):
        return ()
    return tuple(by_visit[k] for k in range(1, visits + 1))


def _series_length(appointments: list[Resource]) -> int:
    for appointment in appointments:
        text = str(appointment.get("description", ""))
        if text.startswith("visit ") and " of " in text:
            return int(text.rsplit(" of ", 1)[1])
    return 1


def cancel_series(ehr: FhirClient, referral_id: str, *, transactions: bool) -> list[Resource]:
    """Cancel every live visit of ours and free every Slot it holds; the cancelled ones."""
    live = [
        a
        for a in ehr.search("Appointment", {"identifier": fs.appointment_token(referral_id)})
        if _is_ours(a, referral_id) and a.get("status") not in ("cancelled", "entered-in-error")
    ]
    if not live:
        return []
    if not transactions:
        return [eb.cancel(ehr, a) for a in live]
    for _ in range(3):
        slot_ids = sorted({sid for a in live for sid in fs.appointment_slot_ids(a)})
        slots = list(ehr.search("Slot", {"_id": ",".join(slot_ids)})) if slot_ids else []
        holders = {f"Appointment/{a['id']}" for a in live}
        entries = [
            {
                "fullUrl": f"{ehr.base_url}/Appointment/{a['id']}",
                "resource": fs.with_status(a, "cancelled"),
                "request": {"method": "PUT", "url": f"Appointment/{a['id']}", "ifMatch": etag(a)},
            }
            for a in live
        ] + [
            {
                "fullUrl": f"{ehr.base_url}/Slot/{s['id']}",
                "resource": fs.freed_slot(s),
                "request": {"method": "PUT", "url": f"Slot/{s['id']}", "ifMatch": etag(s)},
            }
            for s in slots
            if s.get("status") == "busy" and fs.slot_holder(s) in holders
        ]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        try:
            answer = ehr.transaction(bundle, repeatable=True)
        except EhrConflict:
            live = [ehr.read("Appointment", str(a["id"])) for a in live]
            live = [a for a in live if a.get("status") != "cancelled"]
            if not live:
                return []
            continue
        return [e.get("resource") or {} for e in answer.get("entry", [])[: len(live)]]
    raise EhrConflict(f"the series of referral {referral_id} keeps changing under us")
