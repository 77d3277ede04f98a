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


SEARCH_HORIZONS = (timedelta(days=1), timedelta(days=3))


def search_horizons(window: BookingWindow, duration: timedelta) -> Iterator[BookingWindow]:
    """The window's first day, its first three days, then all of it. Every candidate starting
    before a horizon ends lies inside it (it is widened by one protocol duration), so the first
    horizon with a free run yields the window's earliest; most bookings need one small Slot
    search per chair instead of a fortnight of pages."""
    if window.is_empty:
        return
    for reach in SEARCH_HORIZONS:
        closes = min(window.closes, window.opens + reach + duration)
        yield BookingWindow(window.opens, closes)
        if closes == window.closes:
            return
    yield window
