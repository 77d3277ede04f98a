"""Booking a repeat course at once (the clinic file's `repeat.book`): its visits (one, or the
whole series) planned with the first visit inside the due window and the later ones on the
series' spacing, under the same hard rules as any visit, or left recorded as due (pure).

The first course is booked whatever becomes of the repeat: a patient is never refused treatment
now because a chair twelve weeks out is full. The referrer's occurrence bounds this course, not
the next one, so the repeat is planned in its due window alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from .clinic import Clinic, Protocol
from .planner import NoRoom, Plan, RepeatDue, SeriesRequest, plan_series
from .rules import Visit
from .series_booking import due_instants
from .slots import Candidate
from .window import BookingWindow

REPEAT_PRIORITY = "routine"  # weeks ahead: the planner's levelled choice, not the earliest time
WEEK_DAYS = 7  # the label's weekly cap counts the visits inside any seven days


def books_repeat(protocol: Protocol) -> bool:
    repeat = protocol.course.repeat
    return repeat is not None and repeat.book


def due_window(clinic: Clinic, due: RepeatDue) -> BookingWindow:
    """The due days as a booking window: the first due day's start to the last due day's end."""
    return BookingWindow(*due_instants(clinic, due))


def within_weekly_cap(clinic: Clinic, protocol: Protocol, starts: Sequence[datetime]) -> bool:
    """The visits starting at `starts` (both courses) keep the protocol's weekly dose cap."""
    dosing = protocol.course.dosing
    if dosing is None or dosing.max_mg_per_week is None:
        return True
    days = sorted(s.astimezone(clinic.zone).date() for s in starts)
    for first in days:
        week = [d for d in days if first <= d < first + timedelta(days=WEEK_DAYS)]
        if len(week) * dosing.mg_per_visit > dosing.max_mg_per_week:
            return False
    return True


def plan_repeat(
    clinic: Clinic,
    protocol: Protocol,
    due: RepeatDue,
    booked: Sequence[Visit],
    candidates: Sequence[Candidate] | None = None,
    first_course: Sequence[datetime] = (),
) -> Plan | NoRoom:
    """The repeat course's visits (the first inside its due window), or why it has no room
    there (then it stays due).

    `booked` and `candidates` as for `plan_series`: the visits booked around the window and, on
    an EHR, its free Slots as chair times. `first_course`: the first course's visit starts; a
    repeat that would put more than the weekly dose cap inside seven days with them starts a
    day later, within the due window, or has no room.
    """
    window = due_window(clinic, due)
    while True:
        request = SeriesRequest(protocol.name, REPEAT_PRIORITY, window)
        plan = plan_series(clinic, request, booked, candidates)
        if not isinstance(plan, Plan):
            return plan
        starts = [*first_course, *(v.start for v in plan.visits)]
        if within_weekly_cap(clinic, protocol, starts):
            return plan
        day = plan.visits[0].start.astimezone(clinic.zone).date() + timedelta(days=1)
        opens = datetime.combine(day, time(), tzinfo=clinic.zone)
        if opens >= window.closes:
            return NoRoom("dose cap", "every start in the due window exceeds the weekly cap", None)
        window = BookingWindow(opens, window.closes)
