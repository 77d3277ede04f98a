"""A repeat course booked at once on the clinic EHR (the clinic file's `repeat.book`): after the
first course, ONE batch searching the due window (free Slots and the Appointments loading its
days) and ONE transaction booking the repeat visit with its Slots (ifMatch). A window without
room, or a Slot taken between the two, leaves the repeat recorded as due: the first course is
booked either way."""

from __future__ import annotations

import uuid
from typing import Any

from referral_service.adapters.ehr import series_steps as steps
from referral_service.adapters.ehr import slots as eb
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrConflict, EhrDataError
from referral_service.adapters.ehr.headers import etag
from referral_service.domain.scheduling.booking import BookingRequest
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.planner import Plan, RepeatDue
from referral_service.domain.scheduling.repeat_booking import due_window, plan_repeat
from referral_service.domain.scheduling.series_booking import booked_visits
from referral_service.domain.scheduling.slots import ehr_candidates
from referral_service.domain.scheduling.window import BookingWindow
from referral_service.fhir import scheduling as fs

Resource = dict[str, Any]


def book_repeat(
    ehr: FhirClient,
    clinic: Clinic,
    schedules: dict[str, Resource],
    request: BookingRequest,
    protocol: Protocol,
    due: RepeatDue,
    visits: int,
    *,
    transactions: bool,
) -> Resource | None:
    """The repeat visit (numbered after the `visits` of the first course) booked on the EHR, or
    None when it stays due. An earlier attempt's booked repeat is kept, not doubled."""
    window = due_window(clinic, due)
    reach = window.closes + protocol.duration
    slots, appointments = steps.search_range(
        ehr, list(schedules), window.opens, window.opens, reach
    )
    chairs = {str(ref.get("reference")): sid for sid, ref in schedules.items()}
    others = booked_visits(
        clinic, steps.load_rows(appointments, chairs, request.referral_id, protocol.name)
    )
    offered = ehr_candidates(
        eb.parse_slots(slots), BookingWindow(window.opens, reach), protocol.duration, clinic.zone
    )
    plan = plan_repeat(clinic, protocol, due, others, offered)
    if not isinstance(plan, Plan):
        return None
    visit, slot_ids = plan.visits[0], plan.slot_ids[0]
    number = (visits + 1, visits)
    content = fs.as_repeat(
        steps.content(request, protocol, visit, slot_ids, schedules[visit.chair_id], number)
    )
    run = [slots[sid] for sid in slot_ids]
    if not transactions:
        booked = steps.book_one_by_one(ehr, [content], [run])
        return booked[0] if booked else None
    try:
        return _book_in_one_transaction(ehr, request.referral_id, visits + 1, content, run)
    except EhrConflict:  # a Slot taken since the search: the repeat stays due
        return None


def _book_in_one_transaction(
    ehr: FhirClient, referral_id: str, number: int, content: Resource, run: list[Resource]
) -> Resource:
    """ONE transaction: the repeat's Appointment (conditional on its visit identifier) and its
    Slots busy (ifMatch)."""
    full_url = f"urn:uuid:{uuid.uuid4()}"
    create = {
        "fullUrl": full_url,
        "resource": content,
        "request": {
            "method": "POST",
            "url": "Appointment",
            "ifNoneExist": f"{fs.visit_query(referral_id, number)}&status={','.join(steps.LIVE)}",
        },
    }
    holds = [
        {
            "fullUrl": f"{ehr.base_url}/Slot/{slot['id']}",
            "resource": fs.held_slot(slot, full_url),
            "request": {"method": "PUT", "url": f"Slot/{slot['id']}", "ifMatch": etag(slot)},
        }
        for slot in run
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [create, *holds]}
    results = ehr.transaction(bundle, repeatable=True).get("entry", [])
    booked = (results[0].get("resource") or {}) if results else {}
    if booked.get("resourceType") != "Appointment" or "id" not in booked:
        raise EhrDataError("the EHR's transaction response lacks the repeat's Appointment")
    if not str((results[0].get("response") or {}).get("status", "")).startswith("201"):
        # An earlier attempt of ours booked the repeat (its reply lost): keep that one, free the
        # Slots this Bundle just took.
        for entry in results[1:]:
            slot = entry.get("resource") or {}
            if slot.get("resourceType") == "Slot" and slot.get("id"):
                eb.release(ehr, [slot], fs.slot_holder(slot) or "")
    return booked
