"""The booking window of a referral (clinical-criteria.md section 7)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clinic import Clinic


class NaiveTimeError(ValueError):
    """A time without a UTC offset: ambiguous across zones and DST, so never guessed."""


def require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveTimeError(f"{what} has no UTC offset: {value.isoformat()}")
    return value


@dataclass(frozen=True)
class BookingWindow:
    """Appointments must start at or after `opens` and end by `closes`."""

    opens: datetime
    closes: datetime

    @property
    def is_empty(self) -> bool:
        return self.opens >= self.closes

    def holds(self, start: datetime, end: datetime) -> bool:
        return self.opens <= start and end <= self.closes


def booking_window(
    priority: str,
    received_at: datetime,
    now: datetime,
    earliest_start: datetime | None,
    clinic: Clinic,
) -> BookingWindow:
    """Opens at the later of now + lead time and earliest_start; closes N days after receipt.

    The close is counted from receipt, not from now, so a referral retried late does not get
    a longer window than the clinic promised.
    """
    require_aware(received_at, "received_at")
    require_aware(now, "now")
    if priority not in clinic.window_days:
        raise ValueError(f"unknown priority {priority!r}")
    opens = now + clinic.min_lead_time
    if earliest_start is not None:
        opens = max(opens, require_aware(earliest_start, "earliest_start"))
    closes = received_at + timedelta(days=clinic.window_days[priority])
    return BookingWindow(opens=opens, closes=closes)


SEARCH_HORIZONS = (timedelta(days=1), timedelta(days=3), timedelta(days=7))


def search_horizons(window: BookingWindow, duration: timedelta) -> Iterator[BookingWindow]:
    """The window in consecutive stretches: its first day, days 1-3, days 3-7, then the rest.

    Each stretch reaches one protocol duration past its nominal end, so a run starting before
    that end lies wholly inside it; the next stretch starts at that end. Searching them in
    order therefore finds the window's earliest free run, and each Slot search fetches only
    its own stretch instead of everything from the window's start (an almost full clinic
    would otherwise send every earlier day's Slots again with each widening).
    """
    if window.is_empty:
        return
    opens = window.opens
    for reach in SEARCH_HORIZONS:
        closes = min(window.closes, window.opens + reach + duration)
        yield BookingWindow(opens, closes)
        if closes == window.closes:
            return
        opens = window.opens + reach
    yield BookingWindow(opens, window.closes)
