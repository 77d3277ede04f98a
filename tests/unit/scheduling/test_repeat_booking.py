"""A repeat course booked at once (the clinic file's `repeat.book`): the setting's validation,
and the planner's repeat visit (or whole repeated series) inside its due window, across a
closure, under the weekly dose cap across both courses, or none when the window is full (then
it stays recorded as due)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_service.domain.scheduling.clinic import Clinic, ClinicError, clinic_from_dict
from referral_service.domain.scheduling.planner import NoRoom, Plan, RepeatDue
from referral_service.domain.scheduling.repeat_booking import (
    books_repeat,
    due_window,
    plan_repeat,
)
from referral_service.domain.scheduling.rules import Visit, hard_rule_violations
from referral_service.domain.scheduling.slots import Candidate

NY = ZoneInfo("America/New_York")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def clinic(
    repeat: object,
    *,
    closures: tuple[str, ...] = (),
    series: object = None,
    dosing: object = None,
) -> Clinic:
    """One chair open 09:00-11:00 on weekdays (one 2-hour infusion a day), one nurse."""
    protocol: dict = {"minutes": 120, "repeat": repeat}
    if series is not None:
        protocol["series"] = series
    if dosing is not None:
        protocol["dosing"] = dosing
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "chairs": [{"id": "c1", "name": "Chair 1"}],
            "opening_hours": {d: {"open": "09:00", "close": "11:00"} for d in WEEKDAYS},
            "closures": list(closures),
            "nurses": {
                "patients_per_nurse": 2,
                "bands": [{"days": WEEKDAYS, "start": "09:00", "end": "11:00", "nurses": 1}],
            },
            "protocols": {"mab": protocol},
        }
    )


BOOKED = {"every_days": 84, "tolerance_days": 2, "book": True}
# The first visit on Wednesday 2027-01-06: the repeat falls due Wed 03-31, +- 2 days.
DUE = RepeatDue(date(2027, 3, 29), date(2027, 4, 2))


def at(d: date, h: int = 9) -> datetime:
    return datetime.combine(d, time(h), tzinfo=NY)


def test_book_defaults_to_off_and_is_read_when_given() -> None:
    off = clinic({"every_days": 84, "tolerance_days": 7}).protocol("mab")
    on = clinic(BOOKED).protocol("mab")
    assert off.course.repeat is not None and not off.course.repeat.book
    assert not books_repeat(off) and books_repeat(on)


@pytest.mark.parametrize(
    ("repeat", "series", "message"),
    [
        ({**BOOKED, "book": "yes"}, None, "protocols.mab.repeat.book"),
        ({**BOOKED, "book": 1}, None, "protocols.mab.repeat.book"),
        (
            {"every_days": 3, "tolerance_days": 1, "book": True},
            {"visits": 3},
            "protocols.mab.repeat: book: true: the repeat can fall due 2 days after the first "
            "visit, before the 3-visit course ends",
        ),
        (
            {"every_days": 30, "tolerance_days": 2, "book": True},
            {"visits": 3, "spacing": "every-n-days", "every_days": 14},
            "before the 3-visit course ends (28 days at least)",
        ),
    ],
)
def test_a_bad_book_setting_is_named(repeat: object, series: object, message: str) -> None:
    with pytest.raises(ClinicError) as caught:
        clinic(repeat, series=series)
    assert message in str(caught.value)


def test_the_due_window_runs_from_the_first_due_day_to_the_end_of_the_last() -> None:
    window = due_window(clinic(BOOKED), DUE)
    assert window.opens == at(date(2027, 3, 29), 0)
    assert window.closes == at(date(2027, 4, 3), 0)


def test_the_repeat_takes_the_first_day_of_its_window_with_room() -> None:
    c = clinic(BOOKED)
    plan = plan_repeat(c, c.protocol("mab"), DUE, [])
    assert isinstance(plan, Plan) and len(plan.visits) == 1
    assert plan.visits[0].start == at(date(2027, 3, 29))


def test_the_repeat_steps_over_a_closure_and_booked_days_inside_its_window() -> None:
    c = clinic(BOOKED, closures=("2027-03-29",))
    booked = [Visit.of(c, "mab", "c1", at(date(2027, 3, 30)))]
    plan = plan_repeat(c, c.protocol("mab"), DUE, booked)
    assert isinstance(plan, Plan)
    assert plan.visits[0].start == at(date(2027, 3, 31))
    assert hard_rule_violations(c, [*booked, *plan.visits]) == []


def test_a_full_window_gives_no_room_and_says_when_it_would_fit() -> None:
    c = clinic(BOOKED, closures=("2027-03-29",))
    full = [
        Visit.of(c, "mab", "c1", at(date(2027, 3, 29) + timedelta(days=k))) for k in (1, 2, 3, 4)
    ]
    refused = plan_repeat(c, c.protocol("mab"), DUE, full)
    assert isinstance(refused, NoRoom)
    assert refused.first_fit == date(2027, 4, 5)  # the Monday after: outside the due window


def test_on_an_ehr_only_offered_slots_inside_the_window_are_taken() -> None:
    c = clinic(BOOKED)
    outside = Candidate("c1", at(date(2027, 3, 26)), at(date(2027, 3, 26), 11), ("s-early",))
    inside = Candidate("c1", at(date(2027, 4, 1)), at(date(2027, 4, 1), 11), ("s-in",))
    plan = plan_repeat(c, c.protocol("mab"), DUE, [], [outside, inside])
    assert isinstance(plan, Plan)
    assert plan.visits[0].start == at(date(2027, 4, 1)) and plan.slot_ids == (("s-in",),)
    assert isinstance(plan_repeat(c, c.protocol("mab"), DUE, [], [outside]), NoRoom)


# A DHE-like course: 3 visits on consecutive open days, the repeat booked at once.
SERIES = {"visits": 3, "spacing": "consecutive-open-days"}


def days_of(plan: Plan) -> list[date]:
    return [v.start.astimezone(NY).date() for v in plan.visits]


def test_a_repeated_series_may_be_booked_at_once() -> None:
    assert books_repeat(clinic(BOOKED, series=SERIES).protocol("mab"))


def test_a_repeated_series_is_planned_whole_from_the_first_day_of_its_window() -> None:
    c = clinic(BOOKED, series=SERIES)
    plan = plan_repeat(c, c.protocol("mab"), DUE, [])
    assert isinstance(plan, Plan)
    assert days_of(plan) == [date(2027, 3, 29), date(2027, 3, 30), date(2027, 3, 31)]


def test_a_repeated_series_keeps_its_spacing_across_a_closure_and_the_weekend() -> None:
    c = clinic(BOOKED, series=SERIES, closures=("2027-03-30",))
    booked = [Visit.of(c, "mab", "c1", at(date(2027, 3, 29)))]
    plan = plan_repeat(c, c.protocol("mab"), DUE, booked)
    assert isinstance(plan, Plan)
    # Mon taken, Tue closed: Wed, Thu, Fri. With Wed also taken: Thu, Fri, then Monday.
    assert days_of(plan) == [date(2027, 3, 31), date(2027, 4, 1), date(2027, 4, 2)]
    booked.append(Visit.of(c, "mab", "c1", at(date(2027, 3, 31))))
    plan = plan_repeat(c, c.protocol("mab"), DUE, booked)
    assert isinstance(plan, Plan)
    assert days_of(plan) == [date(2027, 4, 1), date(2027, 4, 2), date(2027, 4, 5)]
    assert hard_rule_violations(c, [*booked, *plan.visits]) == []


def test_a_repeated_series_that_cannot_be_placed_whole_has_no_room() -> None:
    c = clinic(BOOKED, series=SERIES)
    # Wednesday and the next Monday taken: every first day in the window (Mon-Fri) would need
    # one of them within its three consecutive open days, so nothing is planned, not part.
    booked = [Visit.of(c, "mab", "c1", at(d)) for d in (date(2027, 3, 31), date(2027, 4, 5))]
    assert isinstance(plan_repeat(c, c.protocol("mab"), DUE, booked), NoRoom)


# A first course Thu 03-18, Fri 03-19, Mon 03-22, repeated after 5 days +- 1: due Mon-Wed.
FIRST_DAYS = (date(2027, 3, 18), date(2027, 3, 19), date(2027, 3, 22))
FIVE_DAYS = {"every_days": 5, "tolerance_days": 1, "book": True}
SOON = RepeatDue(date(2027, 3, 22), date(2027, 3, 24))


def capped(max_mg_per_week: int) -> Clinic:
    dosing = {"mg_per_visit": 1, "max_mg_per_week": max_mg_per_week}
    return clinic(FIVE_DAYS, series=SERIES, dosing=dosing)


def test_the_weekly_dose_cap_counts_both_courses() -> None:
    c = capped(4)
    first = [Visit.of(c, "mab", "c1", at(d)) for d in FIRST_DAYS]
    alone = plan_repeat(c, c.protocol("mab"), SOON, first)
    assert isinstance(alone, Plan) and days_of(alone)[0] == date(2027, 3, 23)
    # From Tue 23 the days 18-24 would hold 5 visits (5 mg); from Wed 24 no 7 days hold over 4.
    starts = [v.start for v in first]
    plan = plan_repeat(c, c.protocol("mab"), SOON, first, first_course=starts)
    assert isinstance(plan, Plan)
    assert days_of(plan) == [date(2027, 3, 24), date(2027, 3, 25), date(2027, 3, 26)]


def test_a_repeat_that_would_break_the_dose_cap_everywhere_in_its_window_has_no_room() -> None:
    c = capped(3)
    first = [Visit.of(c, "mab", "c1", at(d)) for d in FIRST_DAYS]
    starts = [v.start for v in first]
    refused = plan_repeat(c, c.protocol("mab"), SOON, first, first_course=starts)
    assert isinstance(refused, NoRoom) and refused.constraint == "dose cap"
