"""The earliest infusion a draft referral would get if it were signed now: the planner over the
live schedule (the clinic's chairs, or the EHR's free Slots), read-only (nothing is held), within
a time budget. A schedule that cannot be read in time yields no date rather than a wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as TimedOut
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.domain.scheduling.clinic import Clinic, ClinicError
from referral_service.domain.scheduling.clinic import Protocol as InfusionProtocol
from referral_service.domain.scheduling.nursing import Course
from referral_service.domain.scheduling.planner import Occurrence, Plan, SeriesRequest, plan_series
from referral_service.domain.scheduling.rules import Visit
from referral_service.domain.scheduling.slots import Candidate
from referral_service.domain.scheduling.window import booking_window

log = logging.getLogger(__name__)

# Past the window's close, the room a series' later visits may need (consecutive open days across
# a long closure, or visits every N days).
SERIES_REACH = timedelta(days=35)
_BEFORE = timedelta(days=1)  # visits of the window's first day that began the evening before
_READER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="earliest-infusion")
_PROTOCOL_WORDS = {"dhe": "DHE"}


class ScheduleLook(Protocol):
    def look(
        self, start: datetime, end: datetime, protocol: InfusionProtocol
    ) -> tuple[list[Visit], list[Candidate] | None]:
        """Booked visits overlapping [start, end), and the chair times on offer (None: every
        cell of the clinic's own chairs)."""


class ChairsLook:
    """The clinic's own chairs: the booked appointments in our database."""

    def __init__(self, clinic: Clinic, unit_of_work: Callable[..., SqlUnitOfWork]) -> None:
        self.clinic, self._unit_of_work = clinic, unit_of_work

    def look(
        self, start: datetime, end: datetime, protocol: InfusionProtocol
    ) -> tuple[list[Visit], None]:
        with self._unit_of_work(read_only=True) as uow:
            rows = uow.appointments.booked_between(start, end)
        return [self._visit(row) for row in rows], None

    def _visit(self, row: dict[str, Any]) -> Visit:
        spec = self.clinic.protocols.get(row["protocol"])
        course = spec.course if spec is not None else Course()
        start, end = row["start"], row["end"]
        return Visit(
            start, end, row["chair_id"], course.nurse_start_minutes, course.nurse_end_minutes
        )


@dataclass(frozen=True)
class EarliestInfusion:
    day: date  # the first visit's local day
    protocol: str
    visits: int
    priority: str

    def words(self) -> str:
        """E.g. "Earliest infusion if signed now: Tue 8 Dec (DHE, 3 visits, urgent)"."""
        name = _PROTOCOL_WORDS.get(self.protocol, self.protocol.replace("-", " "))
        visits = f"{self.visits} visit{'s' if self.visits != 1 else ''}"
        day = f"{self.day:%a} {self.day.day} {self.day:%b}"
        return f"Earliest infusion if signed now: {day} ({name}, {visits}, {self.priority})"


def earliest_infusion(
    look: ScheduleLook,
    clinic: Clinic,
    protocol: str,
    priority: str,
    earliest_start: datetime | None,
    now: datetime,
    seconds: float,
    occurrence: Occurrence | None = None,
) -> EarliestInfusion | None:
    """The day the whole course would start if the referral were received now, or None when
    the schedule was not read within `seconds` or no course fits inside the priority window."""
    try:
        spec = clinic.protocol(protocol)
        window = booking_window(priority, now, now, earliest_start, clinic)
    except (ClinicError, ValueError):
        return None
    if seconds <= 0 or window.is_empty:
        return None
    read = _READER.submit(look.look, window.opens - _BEFORE, window.closes + SERIES_REACH, spec)
    try:
        booked, offered = read.result(timeout=seconds)
    except TimedOut:
        read.cancel()
        log.warning("earliest infusion: the schedule was not read within the CDS budget")
        return None
    except Exception as exc:  # an unreadable schedule costs the card its date, nothing more
        log.warning("earliest infusion: schedule not read", extra={"error": type(exc).__name__})
        return None
    request = SeriesRequest(protocol, priority, window, occurrence or Occurrence())
    plan = plan_series(clinic, request, booked, offered)
    if not isinstance(plan, Plan):
        return None
    first = plan.visits[0].start.astimezone(clinic.zone).date()
    return EarliestInfusion(first, protocol, len(plan.visits), priority)
