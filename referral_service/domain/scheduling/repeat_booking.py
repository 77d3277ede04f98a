"""Booking a repeat course at once (the clinic file's `repeat.book`): its visit planned inside
the due window under the same hard rules as any visit, or left recorded as due (pure).

The first course is booked whatever becomes of the repeat: a patient is never refused treatment
now because a chair twelve weeks out is full. The referrer's occurrence bounds this course, not
the next one, so the repeat is planned in its due window alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from .clinic import Clinic, Protocol
from .planner import NoRoom, Plan, RepeatDue, SeriesRequest, plan_series
from .rules import Visit
from .series_booking import due_instants
from .slots import Candidate
from .window import BookingWindow

REPEAT_PRIORITY = "routine"  # weeks ahead: the planner's levelled choice, not the earliest time


def books_repeat(protocol: Protocol) -> bool:
    repeat = protocol.course.repeat
    return repeat is not None and repeat.book


def due_window(clinic: Clinic, due: RepeatDue) -> BookingWindow:
    """The due days as a booking window: the first due day's start to the last due day's end."""
    return BookingWindow(*due_instants(clinic, due))


def plan_repeat(
    clinic: Clinic,
    protocol: Protocol,
    due: RepeatDue,
    booked: Sequence[Visit],
    candidates: Sequence[Candidate] | None = None,
) -> Plan | NoRoom:
    """The repeat visit inside its due window, or why it has no room there (then it stays due).

    `booked` and `candidates` as for `plan_series`: the visits booked around the window and, on
    an EHR, its free Slots as chair times.
    """
    request = SeriesRequest(protocol.name, REPEAT_PRIORITY, due_window(clinic, due))
    return plan_series(clinic, request, booked, candidates)
