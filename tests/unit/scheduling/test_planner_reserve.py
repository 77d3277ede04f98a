"""The reserve: a referral that can wait leaves a short day before a closed day room for more."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict, load_clinic
from referral_service.domain.scheduling.planner import (
    Occurrence,
    Plan,
    SeriesRequest,
    plan_series,
)
from referral_service.domain.scheduling.rules import Visit, hard_rule_violations
from referral_service.domain.scheduling.short_days import ShortDays
from referral_service.domain.scheduling.slots import Candidate
from referral_service.domain.scheduling.window import BookingWindow

NY = ZoneInfo("America/New_York")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def ny(d: int, h: int = 0) -> datetime:
    return datetime(2026, 12, d, h, tzinfo=NY)  # 2026-12-04 is a Friday, 12-05 a Saturday


def clinic(chairs: tuple[str, ...] = ("c1", "c2"), patients_per_nurse: int = 1) -> Clinic:
    """One nurse watching one patient: Saturday (09-13) holds two 2-hour visits, a weekday five.
    Christmas Day (Friday 2026-12-25) is closed: Saturday 12-26 lies between two closed days."""
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "closures": ["2026-12-25"],
            "min_lead_minutes": 0,
            "chairs": [{"id": c, "name": f"Chair {c}"} for c in chairs],
            "opening_hours": {
                **{d: {"open": "08:00", "close": "18:00"} for d in WEEKDAYS},
                "saturday": {"open": "09:00", "close": "13:00"},
            },
            "nurses": {
                "patients_per_nurse": patients_per_nurse,
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
        ("urgent", ["Mon 08:00"]),  # its 3 days reach Monday too
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


@pytest.mark.parametrize("priority", ["routine", "urgent"])
def test_a_referral_whose_window_has_only_that_day_still_takes_the_reserve(priority: str) -> None:
    assert days(ask(priority, ny(5), ny(6), SATURDAY_9)) == ["Sat 11:00"]


def test_a_day_before_an_open_day_keeps_no_reserve() -> None:
    """Friday's last start goes to a routine referral: Saturday is open the next day."""
    friday = [Visit.of(clinic(), "infusion", "c1", ny(4, h)) for h in (8, 10, 12, 14)]
    assert days(ask("routine", ny(4), ny(18), friday)) == ["Fri 16:00"]


def test_the_reserve_counts_only_times_after_the_window_opens() -> None:
    """From 11:00 Saturday has one start left: taking it leaves none, so Monday."""
    assert days(ask("routine", ny(5, 11), ny(18), [])) == ["Mon 08:00"]


@pytest.mark.parametrize(
    ("priority", "expected"),
    [("routine", ["Mon 08:00", "Tue 08:00"]), ("asap", ["Fri 08:00", "Sat 11:00"])],
)
def test_a_series_later_visit_keeps_the_reserve_too(priority: str, expected: list[str]) -> None:
    """Friday + Saturday would take Saturday's last start with visit 2: a routine series waits."""
    assert days(ask(priority, ny(4), ny(18), SATURDAY_9, "two-day")) == expected


def test_a_full_weekday_before_a_closed_day_keeps_no_reserve() -> None:
    """Christmas Eve is a weekday like any other (not short): its last start goes to routine
    work. The reserve there cost routine referrals days and saved nobody (bench/scheduling.py)."""
    eve = [Visit.of(clinic(), "infusion", "c1", ny(24, h)) for h in (8, 10, 12, 14)]
    assert days(ask("routine", ny(24), ny(31), eve)) == ["Thu 16:00"]


def test_a_short_day_between_two_closed_days_keeps_two_visits() -> None:
    """Saturday 12-26 (after Christmas) is the only open day in an urgent window from Christmas
    Eve's evening, and in a stat one from its own morning: it keeps room for two. A routine
    referral takes no visit of its two, so waits for Monday; stat does not wait."""
    assert days(ask("routine", ny(26), ny(31), [])) == ["Mon 08:00"]
    assert days(ask("stat", ny(26), ny(27), [])) == ["Sat 09:00"]


def test_short_days_are_those_under_half_the_fullest_weekdays_nurse_hours() -> None:
    short = ShortDays(load_clinic(None))  # 2 nurses x 10 hours on weekdays, 1 x 4 on Saturday
    assert short.is_short(date(2026, 12, 5))
    assert not short.is_short(date(2026, 12, 24))
    assert short.reserve_on(date(2026, 12, 5), 1) == 1
    assert short.reserve_on(date(2027, 1, 2), 1) == 2  # New Year's Day closed before it
    assert short.reserve_on(date(2026, 12, 24), 1) == 0  # Christmas Eve: a full weekday
    assert short.reserve_on(date(2026, 12, 5), 0) == 0


def test_first_visits_on_a_short_day_are_spread_to_fit_four_two_hour_visits() -> None:
    """The example clinic's Saturday (1 nurse, 1:3, 09-13): the earliest starts 9:00, 9:30, 10:00
    leave no start for a fourth (11:00 meets 9:30's end phase); spread, 9:00, 9:45, 10:15 and
    11:00 all fit. The occurrence date fixes the day, so the reserve gives way."""
    example = load_clinic(None)
    window = BookingWindow(ny(4, 18), ny(18))
    booked: list[Visit] = []
    for _ in range(4):
        request = SeriesRequest(
            "standard-infusion", "routine", window, Occurrence.on_day(date(2026, 12, 5), NY)
        )
        plan = plan_series(example, request, booked)
        assert isinstance(plan, Plan)
        booked.extend(plan.visits)
    assert sorted(v.start.astimezone(NY).strftime("%H:%M") for v in booked) == [
        "09:00",
        "09:45",
        "10:15",
        "11:00",
    ]
    assert hard_rule_violations(example, booked) == []


@pytest.mark.parametrize(
    ("first_day", "expected"),
    [
        (3, ["Thu 08:00", "Fri 10:00"]),  # Friday, the eve of Saturday: the earliest start
        (2, ["Wed 08:00", "Thu 16:00"]),  # an ordinary day: levelled, away from 08:00's end
    ],
)
def test_a_later_visit_on_the_eve_of_a_short_day_leaves_the_afternoon_free(
    first_day: int, expected: list[str]
) -> None:
    """Friday's own arrivals have only its afternoon before the scarce Saturday, so a series'
    later visit there takes the earliest start; on other days it is levelled."""
    second_day = [Visit.of(clinic(), "infusion", "c1", ny(first_day + 1, 8))]
    plan = ask("routine", ny(first_day, 8), ny(first_day, 12), second_day, "two-day")
    assert days(plan) == expected


def test_a_plan_says_when_it_takes_the_reserve() -> None:
    """The EHR adapter, given one search range at a time, looks at later ranges first."""
    taking = ask("routine", ny(5), ny(6), SATURDAY_9)
    keeping = ask("routine", ny(5), ny(18), SATURDAY_9)
    stat = ask("stat", ny(5), ny(6), SATURDAY_9)
    assert isinstance(taking, Plan) and taking.takes_reserve
    assert isinstance(keeping, Plan) and not keeping.takes_reserve
    assert isinstance(stat, Plan) and not stat.takes_reserve  # stat never keeps one


def test_on_ehr_slots_the_reserve_counts_only_the_ehrs_chairs() -> None:
    """The clinic file names chair c1; the EHR's one chair is ehr-a, whose Saturday 09:00 is
    booked. Taking its 11:00 leaves Saturday no room on a real chair, so a routine referral goes
    to Monday; counting the file's c1 (free 09:30-11:30) as a chair kept Saturday."""
    c = clinic(chairs=("c1",), patients_per_nurse=4)
    hours = timedelta(hours=2)
    offered = [
        Candidate("ehr-a", ny(5, 11), ny(5, 11) + hours, ("slot-sat",)),
        Candidate("ehr-a", ny(7, 9), ny(7, 9) + hours, ("slot-mon",)),
    ]
    booked = [Visit.of(c, "infusion", "ehr-a", ny(5, 9))]
    request = SeriesRequest("infusion", "routine", BookingWindow(ny(5), ny(9)))
    assert ShortDays(c).reserve_on(date(2026, 12, 5), 1) == 1
    assert days(plan_series(c, request, booked, offered)) == ["Mon 09:00"]
    urgent = SeriesRequest("infusion", "stat", BookingWindow(ny(5), ny(9)))
    assert days(plan_series(c, urgent, booked, offered)) == ["Sat 11:00"]
