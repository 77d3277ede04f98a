"""A repeat course booked at once on the clinic EHR (the clinic file's `repeat.book`): after the
first course, ONE batch searching the due window (free Slots and the Appointments loading its
days) and ONE transaction booking the repeat visit with its Slots (ifMatch). A window without
room, or a Slot taken between the two, leaves the repeat recorded as due: the first course is
booked either way."""

from __future__ import annotations

from typing import Any

from referral_service.adapters.ehr import series_steps as steps
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrConflict
from referral_service.domain.scheduling.booking import BookingRequest
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.planner import Plan, RepeatDue
from referral_service.domain.scheduling.repeat_booking import due_window, plan_repeat
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
    span = (window.opens, window.opens, window.closes + protocol.duration)
    slots, others, offered = steps.range_offer(
        ehr, clinic, schedules, request.referral_id, protocol, span
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
        booked = steps.book_in_one_transaction(
            ehr, request.referral_id, [content], [run], first_visit=visits + 1
        )
    except steps.BookedEarlier as earlier:  # an earlier attempt's repeat (its reply lost): kept
        return earlier.appointments[0]
    except EhrConflict:  # a Slot taken since the search: the repeat stays due
        return None
    return booked[0]
