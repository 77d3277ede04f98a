"""Planner properties over random small clinics and bookings, against a brute-force search.

Every plan obeys every hard rule (judged by rules.py over continuous time, not the planner's
grid), keeps the series' spacing, the window and the occurrence; and when any plan exists within
the window, one is returned, starting on the earliest day a brute-force search finds.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.domain.scheduling.planner import (
    CANNOT_WAIT,
    RESERVE_VISITS,
    NoRoom,
    Occurrence,
    Plan,
    SeriesRequest,
    plan_series,
    series_days,
)
from referral_service.domain.scheduling.rules import Visit, hard_rule_violations
from referral_service.domain.scheduling.short_days import ShortDays
from referral_service.domain.scheduling.slots import Candidate
from referral_service.domain.scheduling.window import BookingWindow

NY = ZoneInfo("America/New_York")
MONDAY = date(2026, 3, 2)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


@st.composite
def clinics(draw: st.DrawFn) -> Clinic:
    open_days = draw(st.lists(st.sampled_from(DAYS), min_size=2, max_size=6, unique=True))
    close_hour = draw(st.integers(10, 12))
    minutes = draw(st.sampled_from([60, 90, 120]))
    start_min = draw(st.sampled_from([0, 15, 30, 45]))
    end_min = draw(st.sampled_from([0, 15]))
    spacing = draw(
        st.sampled_from(
            [{"spacing": "consecutive-open-days"}, {"spacing": "every-n-days", "every_days": 2}]
        )
    )
    bands = [
        {
            "days": open_days,
            "start": "08:00",
            "end": f"{close_hour - 1:02d}:00",
            "nurses": draw(st.integers(1, 2)),
        },
        {
            "days": open_days,
            "start": f"{close_hour - 1:02d}:00",
            "end": f"{close_hour:02d}:00",
            "nurses": draw(st.integers(1, 2)),
        },
    ]
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "cell_minutes": draw(st.sampled_from([15, 30])),
            "min_lead_minutes": 0,
            "chairs": [
                {"id": f"c{i}", "name": f"Chair {i}"} for i in range(draw(st.integers(1, 3)))
            ],
            "opening_hours": {
                d: {"open": "08:00", "close": f"{close_hour:02d}:00"} for d in open_days
            },
            "closures": draw(
                st.lists(st.sampled_from([MONDAY + timedelta(n) for n in range(7)]), max_size=1)
            ),
            "nurses": {"patients_per_nurse": draw(st.integers(1, 4)), "bands": bands},
            "protocols": {
                "p": {
                    "minutes": minutes,
                    "nurse_start_minutes": start_min,
                    "nurse_end_minutes": end_min,
                    "series": {"visits": draw(st.integers(1, 3)), **spacing},
                }
            },
        }
    )


def at(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, 8, tzinfo=NY) + timedelta(minutes=minutes)


def day_starts(clinic: Clinic, day: date) -> list[datetime]:
    opening = clinic.opening_on(day)
    if opening is None:
        return []
    duration = clinic.protocol("p").duration
    out, start = [], opening[0]
    while start + duration <= opening[1]:
        out.append(start)
        start += clinic.cell
    return out


def bookings(clinic: Clinic, draws: list[tuple[int, int, int]]) -> list[Visit]:
    """Random visits, each kept only if the day still obeys the hard rules with it."""
    booked: list[Visit] = []
    for day_offset, start_cells, chair in draws:
        day = MONDAY + timedelta(day_offset)
        starts = day_starts(clinic, day)
        if not starts:
            continue
        visit = Visit.of(
            clinic,
            "p",
            clinic.chairs[chair % len(clinic.chairs)].id,
            starts[start_cells % len(starts)],
        )
        if not hard_rule_violations(clinic, [*booked, visit]):
            booked.append(visit)
    return booked


def fits(clinic: Clinic, booked: list[Visit], visit: Visit) -> bool:
    return not hard_rule_violations(clinic, [*booked, visit])


def brute_force_first_day(
    clinic: Clinic,
    req: SeriesRequest,
    booked: list[Visit],
    offered: set[tuple[str, datetime]] | None = None,
) -> date | None:
    """The earliest first day from which every visit of the series has some legal chair time
    (among `offered` (chair, start) pairs when given)."""
    protocol = clinic.protocol("p")
    for offset in range(10):
        first = MONDAY + timedelta(offset)
        days = series_days(clinic, first, protocol)
        if days is None:
            continue
        if all(
            any(
                fits(clinic, booked, Visit.of(clinic, "p", chair.id, start))
                and (index > 0 or req.window.holds(start, start + protocol.duration))
                and req.occurrence.holds(start, start + protocol.duration, index == 0)
                for start in day_starts(clinic, day)
                for chair in clinic.chairs
                if offered is None or (chair.id, start) in offered
            )
            for index, day in enumerate(days)
        ):
            return first
    return None


scenario = st.tuples(
    clinics(),
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 20), st.integers(0, 2)), max_size=50),
    st.integers(0, 4),  # window opens, days after Monday
    st.integers(1, 4),  # window length in days
    st.sampled_from(["routine", "stat"]),
    st.one_of(st.none(), st.integers(0, 6)),  # occurrence period starts, days after Monday
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario)
def test_plans_obey_the_rules_and_exist_whenever_brute_force_finds_one(case: tuple) -> None:
    clinic, draws, open_day, length, priority, occ_day = case
    booked = bookings(clinic, draws)
    opens = at(MONDAY + timedelta(open_day), -60)
    occurrence = (
        Occurrence()
        if occ_day is None
        else Occurrence(
            at(MONDAY + timedelta(occ_day), -480), at(MONDAY + timedelta(occ_day + 5), -480)
        )
    )
    req = SeriesRequest(
        "p", priority, BookingWindow(opens, opens + timedelta(days=length)), occurrence
    )
    result = plan_series(clinic, req, booked)
    expected_first = brute_force_first_day(clinic, req, booked)
    if expected_first is None:
        assert isinstance(result, NoRoom)
        return
    assert isinstance(result, Plan), result
    visits = list(result.visits)
    assert hard_rule_violations(clinic, booked + visits) == []
    first = visits[0].start.astimezone(NY).date()
    assert first == expected_first
    assert [v.start.astimezone(NY).date() for v in visits] == series_days(
        clinic, first, clinic.protocol("p")
    )
    assert req.window.holds(visits[0].start, visits[0].end)
    assert all(req.occurrence.holds(v.start, v.end, i == 0) for i, v in enumerate(visits))


@settings(max_examples=60, deadline=None)
@given(scenario)
def test_the_same_inputs_give_the_same_plan(case: tuple) -> None:
    clinic, draws, open_day, length, priority, _ = case
    booked = bookings(clinic, draws)
    opens = at(MONDAY + timedelta(open_day), -60)
    req = SeriesRequest("p", priority, BookingWindow(opens, opens + timedelta(days=length)))
    assert plan_series(clinic, req, booked) == plan_series(clinic, req, list(reversed(booked)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario, st.randoms(use_true_random=False))
def test_on_offered_chair_times_only_offers_are_used_and_none_is_missed(
    case: tuple, rng: random.Random
) -> None:
    """As with an EHR's free Slots: the planner may use only the chair times on offer."""
    clinic, draws, open_day, length, priority, _ = case
    booked = bookings(clinic, draws)
    duration = clinic.protocol("p").duration
    offers = [
        Candidate(chair.id, start, start + duration, (f"{chair.id}@{start:%d%H%M}",))
        for offset in range(10)
        for start in day_starts(clinic, MONDAY + timedelta(offset))
        for chair in clinic.chairs
        if rng.random() < 0.5
    ]
    opens = at(MONDAY + timedelta(open_day), -60)
    req = SeriesRequest("p", priority, BookingWindow(opens, opens + timedelta(days=length)))
    result = plan_series(clinic, req, booked, offers)
    offered = {(c.chair_id, c.start) for c in offers}
    first_day = brute_force_first_day(clinic, req, booked, offered)
    if first_day is None:
        assert isinstance(result, NoRoom)
        return
    assert isinstance(result, Plan), result
    assert all((v.chair_id, v.start) in offered for v in result.visits)
    assert hard_rule_violations(clinic, booked + list(result.visits)) == []
    planned = result.visits[0].start.astimezone(NY).date()
    assert planned >= first_day
    if planned != first_day:
        # Only the reserve moves a referral that can wait past a day where it fits: a short
        # day followed by a closed day among the days its series would have taken.
        assert priority not in CANNOT_WAIT, (planned, first_day)
        short = ShortDays(clinic)
        reach = (result.visits[-1].start.astimezone(NY).date() - first_day).days + 1
        assert any(
            short.reserve_on(first_day + timedelta(k), RESERVE_VISITS) for k in range(reach)
        ), (planned, first_day)
