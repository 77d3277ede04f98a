"""The series planner, case by case: nurse limits, colliding starts, series shapes, constraints."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict, load_clinic
from referral_service.domain.scheduling.planner import (
    NoRoom,
    Occurrence,
    Plan,
    RepeatDue,
    SeriesRequest,
    plan_series,
)
from referral_service.domain.scheduling.rules import Visit, hard_rule_violations
from referral_service.domain.scheduling.slots import Candidate
from referral_service.domain.scheduling.window import BookingWindow

NY = ZoneInfo("America/New_York")
EXAMPLE = load_clinic(None)


def ny(m: int, d: int, h: int = 0, mi: int = 0, y: int = 2026) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=NY)


def small_clinic(chairs: int, nurses: int, per_nurse: int, close: str, start_min: int) -> Clinic:
    weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday"]
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "chairs": [{"id": f"c{i}", "name": f"Chair {i}"} for i in range(1, chairs + 1)],
            "opening_hours": {d: {"open": "08:00", "close": close} for d in weekdays},
            "nurses": {
                "patients_per_nurse": per_nurse,
                "bands": [{"days": weekdays, "start": "08:00", "end": close, "nurses": nurses}],
            },
            "protocols": {
                "infusion": {
                    "minutes": 120,
                    "nurse_start_minutes": start_min,
                    "nurse_end_minutes": 0,
                }
            },
        }
    )


def request(protocol: str, opens: datetime, closes: datetime, **kw: object) -> SeriesRequest:
    return SeriesRequest(
        protocol,
        str(kw.get("priority", "routine")),
        BookingWindow(opens, closes),
        kw.get("occurrence", Occurrence()),
    )  # type: ignore[arg-type]


def local(plan: Plan) -> list[tuple[str, str]]:
    return [(v.chair_id, v.start.astimezone(NY).strftime("%a %m-%d %H:%M")) for v in plan.visits]


def test_nurse_ratio_boundary_admits_exactly_nurses_times_ratio() -> None:
    clinic = small_clinic(chairs=3, nurses=1, per_nurse=2, close="10:00", start_min=0)
    req = request("infusion", ny(3, 2, 8), ny(3, 2, 10))
    one = [Visit.of(clinic, "infusion", "c1", ny(3, 2, 8))]
    plan = plan_series(clinic, req, one)
    assert isinstance(plan, Plan) and local(plan) == [("c2", "Mon 03-02 08:00")]
    full = one + list(plan.visits)
    refused = plan_series(clinic, req, full)
    assert isinstance(refused, NoRoom) and refused.constraint == "nurse ratio"
    assert refused.first_fit == date(2026, 3, 3)  # a chair is free but no nurse to watch it


def test_two_starts_never_collide_on_one_nurse() -> None:
    clinic = small_clinic(chairs=2, nurses=1, per_nurse=4, close="10:30", start_min=30)
    booked = [Visit.of(clinic, "infusion", "c1", ny(3, 2, 8))]
    plan = plan_series(clinic, request("infusion", ny(3, 2, 8), ny(3, 2, 10, 30)), booked)
    assert isinstance(plan, Plan) and local(plan) == [("c2", "Mon 03-02 08:30")]
    assert hard_rule_violations(clinic, booked + list(plan.visits)) == []
    crowded = booked + [Visit.of(clinic, "infusion", "c2", ny(3, 2, 8, 30))]
    clinic3 = small_clinic(chairs=3, nurses=1, per_nurse=4, close="10:30", start_min=30)
    refused = plan_series(clinic3, request("infusion", ny(3, 2, 8), ny(3, 2, 10, 30)), crowded)
    assert isinstance(refused, NoRoom) and refused.constraint == "nurse starts"


def test_dhe_series_across_a_weekend_uses_saturday_and_skips_sunday() -> None:
    plan = plan_series(EXAMPLE, request("dhe", ny(3, 6, 7), ny(3, 7)), [])
    assert isinstance(plan, Plan)
    assert [d[1][:9] for d in local(plan)] == ["Fri 03-06", "Sat 03-07", "Mon 03-09"]
    assert plan.repeat_due is None


def test_dhe_series_across_a_closure_skips_christmas() -> None:
    plan = plan_series(EXAMPLE, request("dhe", ny(12, 24, 7), ny(12, 25)), [])
    assert isinstance(plan, Plan)
    assert [d[1][:9] for d in local(plan)] == ["Thu 12-24", "Sat 12-26", "Mon 12-28"]


def test_occurrence_period_excluding_the_first_fitting_day_moves_the_series() -> None:
    occurrence = Occurrence(ny(3, 4), ny(3, 14))
    req = request("dhe", ny(3, 2, 7), ny(3, 16), occurrence=occurrence)
    plan = plan_series(EXAMPLE, req, [])
    assert isinstance(plan, Plan)
    assert [d[1][:9] for d in local(plan)] == ["Wed 03-04", "Thu 03-05", "Fri 03-06"]


def test_occurrence_date_fixes_the_first_visit_only() -> None:
    req = request("dhe", ny(3, 2, 7), ny(3, 16), occurrence=Occurrence.on_day(date(2026, 3, 5), NY))
    plan = plan_series(EXAMPLE, req, [])
    assert isinstance(plan, Plan)
    assert [d[1][:9] for d in local(plan)] == ["Thu 03-05", "Fri 03-06", "Sat 03-07"]


def test_occurrence_period_too_short_for_the_series() -> None:
    occurrence = Occurrence(ny(3, 2), ny(3, 4))  # Monday and Tuesday: two days for three visits
    refused = plan_series(
        EXAMPLE, request("dhe", ny(3, 2, 7), ny(3, 16), occurrence=occurrence), []
    )
    assert isinstance(refused, NoRoom) and refused.constraint == "occurrence"
    assert refused.first_fit == date(2026, 3, 2)  # where it would fit without the occurrence


def test_window_whose_only_day_cannot_start_the_series() -> None:
    """Friday has room but Saturday is full: a one-day window cannot start the DHE series."""
    saturday = [
        Visit.of(EXAMPLE, "eptinezumab", c.id, ny(3, 7, h))
        for c in EXAMPLE.chairs
        for h in (9, 10, 11, 12)
    ]
    refused = plan_series(EXAMPLE, request("dhe", ny(3, 6, 7), ny(3, 7)), saturday)
    assert isinstance(refused, NoRoom) and refused.constraint == "chairs"
    assert refused.first_fit == date(2026, 3, 9)  # Mon-Tue-Wed; Sat is full, Sunday closed


def test_every_n_days_series_and_its_repeat_due() -> None:
    clinic = clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "chairs": [{"id": "c1", "name": "Chair 1"}],
            "opening_hours": {
                d: {"open": "08:00", "close": "12:00"} for d in ("monday", "wednesday")
            },
            "protocols": {
                "x": {
                    "minutes": 60,
                    "series": {"visits": 2, "spacing": "every-n-days", "every_days": 7},
                    "repeat": {"every_days": 84, "tolerance_days": 7},
                }
            },
        }
    )
    plan = plan_series(clinic, request("x", ny(3, 3, 7), ny(3, 10)), [])
    assert isinstance(plan, Plan)
    assert [d[1][:9] for d in local(plan)] == ["Wed 03-04", "Wed 03-11"]
    assert plan.repeat_due == RepeatDue(date(2026, 5, 20), date(2026, 6, 3))


def test_equal_candidates_are_broken_the_same_way_whatever_the_input_order() -> None:
    booked = [Visit.of(EXAMPLE, "standard-infusion", "chair-2", ny(3, 2, h)) for h in (8, 12)]
    req = request("standard-infusion", ny(3, 2, 7), ny(3, 16))
    first = plan_series(EXAMPLE, req, booked)
    shuffled = list(reversed(booked))
    assert plan_series(EXAMPLE, req, shuffled) == first
    empty = plan_series(EXAMPLE, req, [])
    assert isinstance(empty, Plan) and local(empty) == [("chair-1", "Mon 03-02 08:00")]


def test_stat_and_routine_first_visits_take_the_earliest_start() -> None:
    """Referrals arriving later can only use later times, so a first visit leaves those free."""
    booked = [Visit.of(EXAMPLE, "standard-infusion", "chair-1", ny(3, 2, 8))]
    stat = plan_series(
        EXAMPLE, request("standard-infusion", ny(3, 1, 12), ny(3, 3), priority="stat"), booked
    )
    routine = plan_series(EXAMPLE, request("standard-infusion", ny(3, 1, 12), ny(3, 16)), booked)
    assert isinstance(stat, Plan) and isinstance(routine, Plan)
    assert local(stat) == [("chair-2", "Mon 03-02 08:00")]  # two nurses: a second 08:00 start
    assert local(routine) == [("chair-2", "Mon 03-02 08:00")]


def test_a_routine_first_visit_is_staggered_only_by_the_nurse_rules() -> None:
    booked = [
        Visit.of(EXAMPLE, "standard-infusion", c, ny(3, 2, 8)) for c in ("chair-1", "chair-2")
    ]
    routine = plan_series(EXAMPLE, request("standard-infusion", ny(3, 1, 12), ny(3, 16)), booked)
    # Both nurses start someone at 08:00 (30 minutes each): the next start is 08:30.
    assert isinstance(routine, Plan) and local(routine)[0][1] == "Mon 03-02 08:30"


def test_on_the_windows_first_day_routine_also_takes_the_earliest_start() -> None:
    booked = [Visit.of(EXAMPLE, "standard-infusion", "chair-1", ny(3, 2, 8))]
    routine = plan_series(EXAMPLE, request("standard-infusion", ny(3, 2, 9), ny(3, 16)), booked)
    assert isinstance(routine, Plan) and local(routine) == [("chair-2", "Mon 03-02 09:00")]


def test_a_series_later_visits_spread_starts_away_from_booked_ones() -> None:
    """Days 2 and 3 are fixed by the spacing: there the start keeps nurse phases apart."""
    booked = [Visit.of(EXAMPLE, "standard-infusion", "chair-1", ny(3, 3, 8))]
    plan = plan_series(EXAMPLE, request("dhe", ny(3, 1, 12), ny(3, 16)), booked)
    assert isinstance(plan, Plan)
    assert local(plan)[0] == ("chair-1", "Mon 03-02 08:00")
    second = plan.visits[1]
    assert local(plan)[1][1][:9] == "Tue 03-03"
    # Away from the booked visit's 08:00 start and 09:45 end on an otherwise empty day.
    assert second.start - booked[0].start >= timedelta(hours=2)


def test_ehr_candidates_limit_the_choice_to_what_is_on_offer() -> None:
    offered = [
        Candidate("sched-7", ny(3, 3, 13), ny(3, 3, 15), ("slot-1",)),
        Candidate("sched-7", ny(3, 2, 8), ny(3, 2, 9), ("slot-2",)),
    ]  # too short
    plan = plan_series(EXAMPLE, request("standard-infusion", ny(3, 2, 7), ny(3, 16)), [], offered)
    assert isinstance(plan, Plan) and local(plan) == [("sched-7", "Tue 03-03 13:00")]
    assert plan.slot_ids == (("slot-1",),)


def test_a_loaded_twenty_chair_clinic_keeps_every_rule_and_books_dhe_series() -> None:
    """Decision time is a bench figure (bench/scheduling.py), not a timed test."""
    data = {
        "time_zone": "America/New_York",
        "chairs": [{"id": f"c{i}", "name": f"Chair {i}"} for i in range(20)],
        "opening_hours": {
            d: {"open": "08:00", "close": "18:00"}
            for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
        },
        "nurses": {
            "patients_per_nurse": 4,
            "bands": [
                {
                    "days": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                    "start": "08:00",
                    "end": "18:00",
                    "nurses": 5,
                }
            ],
        },
    }
    clinic = clinic_from_dict(data)
    rng = random.Random(7)
    booked: list[Visit] = []
    for _ in range(200):
        opens = ny(3, 2, 7) + timedelta(days=rng.randrange(14))
        plan = plan_series(
            clinic, request("standard-infusion", opens, opens + timedelta(days=3)), booked
        )
        if isinstance(plan, Plan):
            booked.extend(plan.visits)
    assert len(booked) > 150
    for _ in range(10):
        plan = plan_series(clinic, request("dhe", ny(3, 2, 7), ny(3, 16)), booked)
        assert isinstance(plan, Plan) and len(plan.visits) == 3
        booked.extend(plan.visits)
    assert hard_rule_violations(clinic, booked) == []


@pytest.mark.parametrize("priority", ["routine", "stat"])
def test_plans_obey_every_hard_rule_on_a_busy_example_week(priority: str) -> None:
    rng = random.Random(3)
    booked: list[Visit] = []
    for _ in range(60):
        protocol = rng.choice(["dhe", "standard-infusion", "eptinezumab"])
        opens = ny(3, 2, 7) + timedelta(hours=rng.randrange(96))
        plan = plan_series(
            EXAMPLE, request(protocol, opens, opens + timedelta(days=14), priority=priority), booked
        )
        if isinstance(plan, Plan):
            booked.extend(plan.visits)
    assert len(booked) > 50
    assert hard_rule_violations(EXAMPLE, booked) == []


def test_a_series_on_ehr_slots_needs_an_offer_on_every_visit_day() -> None:
    def offer(day: int, slot: str) -> Candidate:
        return Candidate("sched-1", ny(3, day, 9), ny(3, day, 11), (slot,))

    req = request("dhe", ny(3, 2, 7), ny(3, 3))
    refused = plan_series(EXAMPLE, req, [], [offer(2, "a"), offer(3, "b")])
    assert isinstance(refused, NoRoom) and refused.first_fit is None
    plan = plan_series(EXAMPLE, req, [], [offer(2, "a"), offer(3, "b"), offer(4, "c")])
    assert isinstance(plan, Plan)
    assert [d[1] for d in local(plan)] == ["Mon 03-02 09:00", "Tue 03-03 09:00", "Wed 03-04 09:00"]
    assert plan.slot_ids == (("a",), ("b",), ("c",))
