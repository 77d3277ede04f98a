"""A repeat course booked at once on the clinic EHR (the clinic file's `repeat.book`): after the
first course, ONE batch searching the due window (free Slots and the Appointments loading its
days, through the repeat series' last possible day) and ONE transaction booking every visit of
the repeat course with its Slots (ifMatch). A window without room, or a Slot taken between the
two, leaves the repeat recorded as due: the first course is booked either way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from referral_service.adapters.ehr import series_steps as steps
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrConflict
from referral_service.domain.scheduling.booking import BookingRequest
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.planner import Plan, RepeatDue
from referral_service.domain.scheduling.repeat_booking import due_window, plan_repeat
from referral_service.domain.scheduling.series_booking import series_reach
from referral_service.fhir import scheduling as fs

Resource = dict[str, Any]


def book_repeat(
    ehr: FhirClient,
    clinic: Clinic,
    schedules: dict[str, Resource],
    request: BookingRequest,
    protocol: Protocol,
    due: RepeatDue,
    first_course: Sequence[datetime],
    *,
    transactions: bool,
) -> tuple[Resource, ...]:
    """The repeat course's visits (numbered after the first course's, whose visit starts are
    `first_course`) booked on the EHR, all of them, or () when it stays due. An earlier
    attempt's booked repeat is kept, not doubled."""
    window = due_window(clinic, due)
    span = (window.opens, window.opens, window.closes + series_reach(protocol))
    ours: list[Resource] = []
    slots, others, offered = steps.range_offer(
        ehr, clinic, schedules, request.referral_id, protocol, span, ours
    )
    visits = len(first_course)
    kept = _booked_earlier(ours, visits, protocol.course.series.visits)
    if kept:  # an earlier attempt booked it (its reply lost): kept, even with no room left
        return kept
    plan = plan_repeat(clinic, protocol, due, others, offered, first_course)
    if not isinstance(plan, Plan):
        return ()
    repeats = len(plan.visits)
    contents = [
        fs.as_repeat(
            steps.content(request, protocol, visit, ids, schedules[visit.chair_id], (k, visits)),
            (k - visits, repeats),
        )
        for k, (visit, ids) in enumerate(zip(plan.visits, plan.slot_ids, strict=True), visits + 1)
    ]
    runs = [[slots[sid] for sid in ids] for ids in plan.slot_ids]
    if not transactions:
        return steps.book_one_by_one(ehr, contents, runs)
    try:
        return steps.book_in_one_transaction(
            ehr, request.referral_id, contents, runs, first_visit=visits + 1
        )
    except steps.BookedEarlier as earlier:  # an earlier attempt's repeat (its reply lost): kept
        return earlier.appointments
    except EhrConflict:  # a Slot taken since the search: the repeat stays due
        return ()


def _booked_earlier(ours: list[Resource], visits: int, repeats: int) -> tuple[Resource, ...]:
    """Our booked repeat course found by the due window's search (visits after the first
    course's `visits`), when it is whole; else ()."""
    booked = {
        fs.appointment_visit(a): a for a in ours if a.get("status") == "booked" and fs.is_repeat(a)
    }
    wanted = range(visits + 1, visits + repeats + 1)
    return tuple(booked[k] for k in wanted) if all(k in booked for k in wanted) else ()
