"""The reserve: a referral that can wait leaves the day before a closed day room for one more."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.domain.scheduling.planner import (
    Plan,
    SeriesRequest,
    plan_series,
)
from referral_service.domain.scheduling.rules import Visit, hard_rule_violations
from referral_service.domain.scheduling.window import BookingWindow

NY = ZoneInfo("America/New_York")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def ny(d: int, h: int = 0) -> datetime:
    return datetime(2026, 12, d, h, tzinfo=NY)  # 2026-12-04 is a Friday, 12-05 a Saturday


def clinic() -> Clinic:
    """One nurse watching one patient: Saturday (09-13) holds two 2-hour visits, a weekday five."""
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "chairs": [{"id": "c1", "name": "Chair 1"}, {"id": "c2", "name": "Chair 2"}],
            "opening_hours": {
                **{d: {"open": "08:00", "close": "18:00"} for d in WEEKDAYS},
                "saturday": {"open": "09:00", "close": "13:00"},
            },
            "nurses": {
                "patients_per_nurse": 1,
                "bands": [
                    {"days": WEEKDAYS, "start": "08:00", "end": "18:00", "nurses": 1},
                    {"days": ["saturday"], "start": "09:00", "end": "13:00", "nurses": 1},
                ],
            },
            "protocols": {
                "infusion": {"minutes": 120, "nurse_start_minutes": 15, "nurse_end_minutes": 15},
                "two-day": {
                    "minutes": 120,
                    "nurse_start_minutes": 15,
                    "nurse_end_minutes": 15,
                    "series": {"visits": 2, "spacing": "consecutive-open-days"},
                },
            },
        }
    )


def days(plan: object) -> list[str]:
    assert isinstance(plan, Plan)
    return [v.start.astimezone(NY).strftime("%a %H:%M") for v in plan.visits]


def ask(
    priority: str,
    opens: datetime,
    closes: datetime,
    booked: list[Visit],
    protocol: str = "infusion",
) -> object:
    request = SeriesRequest(protocol, priority, BookingWindow(opens, closes))
    return plan_series(clinic(), request, booked)


SATURDAY_9 = [Visit.of(clinic(), "infusion", "c1", ny(5, 9))]


def test_routine_takes_saturday_while_a_visit_stays_free_after_it() -> None:
    assert days(ask("routine", ny(5), ny(18), [])) == ["Sat 09:00"]


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        ("routine", ["Mon 08:00"]),  # the last Saturday start is left to work that cannot wait
        ("urgent", ["Sat 11:00"]),
        ("asap", ["Sat 11:00"]),
        ("stat", ["Sat 11:00"]),
    ],
)
def test_the_last_start_before_a_closed_day_is_kept_for_referrals_that_cannot_wait(
    priority: str, expected: list[str]
) -> None:
    plan = ask(priority, ny(5), ny(18), SATURDAY_9)
    assert days(plan) == expected
    assert isinstance(plan, Plan)
    assert hard_rule_violations(clinic(), SATURDAY_9 + list(plan.visits)) == []


def test_a_routine_referral_whose_window_has_only_that_day_still_takes_the_reserve() -> None:
    assert days(ask("routine", ny(5), ny(6), SATURDAY_9)) == ["Sat 11:00"]


def test_a_day_before_an_open_day_keeps_no_reserve() -> None:
    """Friday's last start goes to a routine referral: Saturday is open the next day."""
    friday = [Visit.of(clinic(), "infusion", "c1", ny(4, h)) for h in (8, 10, 12, 14)]
    assert days(ask("routine", ny(4), ny(18), friday)) == ["Fri 16:00"]


def test_the_reserve_counts_only_times_after_the_window_opens() -> None:
    """From 11:00 Saturday has one start left: taking it leaves none, so Monday."""
    assert days(ask("routine", ny(5, 11), ny(18), [])) == ["Mon 08:00"]


@pytest.mark.parametrize(
    ("priority", "expected"),
    [("routine", ["Mon 08:00", "Tue 08:00"]), ("urgent", ["Fri 08:00", "Sat 11:00"])],
)
def test_a_series_later_visit_keeps_the_reserve_too(priority: str, expected: list[str]) -> None:
    """Friday + Saturday would take Saturday's last start with visit 2: a routine series waits."""
    assert days(ask(priority, ny(4), ny(18), SATURDAY_9, "two-day")) == expected
