"""Short days: the open days whose staffing makes room scarce, where the reserve is kept (pure).

A short day has under half the nurse-hours (the open hours when nurses are not modelled) of the
clinic's fullest weekday: the example clinic's Saturday (1 nurse, 4 hours) against a weekday
(2 nurses, 10 hours). bench/scheduling.py: every referral that was late for the planner and not
for first-fit wanted a Saturday; a full weekday before a holiday never ran out for work that
could not wait, and keeping its last room cost routine referrals days.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from .clinic import Clinic


def _minutes(starts: time, ends: time) -> int:
    span = datetime.combine(date.min, ends) - datetime.combine(date.min, starts)
    return int(span.total_seconds() // 60)


def _weekday_minutes(clinic: Clinic, weekday: int) -> int:
    """Nurse-minutes of a weekday (open minutes when nurses are not modelled)."""
    hours = clinic.opening_hours.get(weekday)
    if hours is None:
        return 0
    if clinic.staffing is None:
        return _minutes(hours.opens, hours.closes)
    bands = clinic.staffing.bands.get(weekday, ())
    return sum(band.nurses * _minutes(band.starts, band.ends) for band in bands)


class ShortDays:
    """Which days are short, and the visits a referral that can wait leaves free on them."""

    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        minutes = {weekday: _weekday_minutes(clinic, weekday) for weekday in range(7)}
        fullest = max(minutes.values())
        self.short = {weekday for weekday, m in minutes.items() if 2 * m < fullest}

    def is_short(self, day: date) -> bool:
        return day.weekday() in self.short

    def is_eve(self, day: date) -> bool:
        """The next day is an open short day (Friday before Saturday)."""
        after = day + timedelta(days=1)
        return self.is_short(after) and self._open(after)

    def reserve_on(self, day: date, visits: int) -> int:
        """Visits to leave free on `day`: `visits` on a short day followed by a closed day, one
        more when a closed day also comes before it (the only open day between two closures:
        windows of several days, urgent ones too, reach no other day)."""
        if not visits or not self.is_short(day) or self._open(day + timedelta(days=1)):
            return 0
        return visits + (0 if self._open(day - timedelta(days=1)) else 1)

    def _open(self, day: date) -> bool:
        return self.clinic.opening_on(day) is not None
