"""What booking a whole series needs around the planner (pure): the range of days whose load the
planner reads, the visits already booked as the planner sees them, and a repeat course's due
window as instants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

from .clinic import Clinic, ClinicError, Protocol
from .nursing import CONSECUTIVE_OPEN_DAYS
from .planner import RepeatDue
from .rules import Visit
from .window import BookingWindow

_OPEN_DAY_SLACK = 4  # closed days a consecutive-open-days series may step over (weekends)


def series_reach(protocol: Protocol) -> timedelta:
    """How far past its first visit a series can end."""
    series = protocol.course.series
    if series.visits <= 1:
        return protocol.duration
    if series.spacing == CONSECUTIVE_OPEN_DAYS:
        return timedelta(days=series.visits - 1 + _OPEN_DAY_SLACK) + protocol.duration
    return timedelta(days=(series.visits - 1) * series.every_days) + protocol.duration


def load_range(window: BookingWindow, protocol: Protocol) -> BookingWindow:
    """The stretch whose chairs and nurse load a plan inside `window` depends on."""
    return BookingWindow(window.opens - timedelta(days=1), window.closes + series_reach(protocol))


def booked_visits(clinic: Clinic, rows: Iterable[Mapping[str, Any]]) -> list[Visit]:
    """Visits (with their protocol's nurse minutes) from rows of chair_id, protocol, start, end."""
    visits = []
    for row in rows:
        start = row["start"]
        try:
            visits.append(Visit.of(clinic, row["protocol"], row["chair_id"], start))
        except ClinicError:  # a protocol the clinic file no longer lists: the chair time only
            visits.append(Visit(start, row.get("end") or start, row["chair_id"]))
    return visits


def due_instants(clinic: Clinic, due: RepeatDue) -> tuple[datetime, datetime]:
    """The due window as instants: the first due day's start to the last due day's end."""
    earliest = datetime.combine(due.earliest, time(), tzinfo=clinic.zone)
    latest = datetime.combine(due.latest + timedelta(days=1), time(), tzinfo=clinic.zone)
    return earliest, latest
