"""Slot choice, local and among EHR Slots: window edges, lead time, DST, closures, load spread."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_service.domain.scheduling.clinic import OpeningHours, load_clinic
from referral_service.domain.scheduling.slots import (
    FreeSlot,
    Interval,
    ehr_candidates,
    local_candidates,
)
from referral_service.domain.scheduling.window import BookingWindow, NaiveTimeError, booking_window

NY = ZoneInfo("America/New_York")
CLINIC = load_clinic(None)
TWO_HOURS = timedelta(minutes=120)
ONE_HOUR = timedelta(minutes=60)


def ny(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=NY)


def utc(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


def window(opens: datetime, closes: datetime) -> BookingWindow:
    return BookingWindow(opens, closes)


def starts(cands: list, chair: str | None = None) -> list[datetime]:
    return sorted({c.start for c in cands if chair is None or c.chair_id == chair})


def test_earliest_first_and_ties_go_to_the_least_booked_chair() -> None:
    busy = {
        "chair-1": [Interval(ny(2026, 3, 2, 14), ny(2026, 3, 2, 16))],
        "chair-3": [Interval(ny(2026, 3, 2, 11), ny(2026, 3, 2, 12))],
    }
    cands = local_candidates(CLINIC, window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), TWO_HOURS, busy)
    first = cands[:4]
    assert {c.start for c in first} == {ny(2026, 3, 2, 8)}
    assert [c.chair_id for c in first] == ["chair-2", "chair-4", "chair-3", "chair-1"]
    assert all(a.start <= b.start for a, b in zip(cands, cands[1:], strict=False))


def test_busy_intervals_block_overlaps_but_not_touching_ends() -> None:
    busy = {"chair-1": [Interval(ny(2026, 3, 2, 10), ny(2026, 3, 2, 12))]}
    cands = local_candidates(CLINIC, window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), TWO_HOURS, busy)
    chair1 = starts(cands, "chair-1")
    assert ny(2026, 3, 2, 8) in chair1  # 08:00-10:00 ends as the busy time starts
    assert ny(2026, 3, 2, 8, 15) not in chair1
    assert ny(2026, 3, 2, 11, 45) not in chair1
    assert ny(2026, 3, 2, 12) in chair1


def test_lead_time_rounds_up_to_the_next_cell() -> None:
    now = ny(2026, 3, 2, 7, 50)
    win = booking_window("routine", now, now, None, CLINIC)
    cands = local_candidates(CLINIC, win, TWO_HOURS, {})
    assert cands[0].start == ny(2026, 3, 2, 10)  # 07:50 + 2 h = 09:50 -> 10:00


def test_earliest_start_is_respected() -> None:
    now = ny(2026, 3, 2, 6)
    win = booking_window("routine", now, now, ny(2026, 3, 3, 10, 7), CLINIC)
    assert local_candidates(CLINIC, win, TWO_HOURS, {})[0].start == ny(2026, 3, 3, 10, 15)


def test_window_close_bounds_the_end_and_protocol_duration_matters() -> None:
    received = ny(2026, 3, 6, 17)  # Friday; urgent = 3 days -> Monday 17:00
    win = booking_window("urgent", received, received, None, CLINIC)
    long_ = local_candidates(CLINIC, win, TWO_HOURS, {})
    short = local_candidates(CLINIC, win, ONE_HOUR, {})
    assert max(c.end for c in long_) <= ny(2026, 3, 9, 17)
    assert max(starts(long_)) == ny(2026, 3, 9, 15)
    assert max(starts(short)) == ny(2026, 3, 9, 16)
    saturday = [s for s in starts(long_) if s.astimezone(NY).date() == date(2026, 3, 7)]
    assert saturday[0] == ny(2026, 3, 7, 9) and saturday[-1] == ny(2026, 3, 7, 11)
    assert not [s for s in starts(long_) if s.astimezone(NY).date() == date(2026, 3, 8)]


def test_spring_forward_week_keeps_local_hours() -> None:
    # US DST began Sunday 2026-03-08: 08:00 is 13:00 UTC on Friday, 12:00 UTC on Monday.
    cands = local_candidates(CLINIC, window(utc(2026, 3, 6), utc(2026, 3, 10, 4)), TWO_HOURS, {})
    by_day: dict[date, list[datetime]] = {}
    for s in starts(cands):
        by_day.setdefault(s.astimezone(NY).date(), []).append(s)
    assert by_day[date(2026, 3, 6)][0] == utc(2026, 3, 6, 13)
    assert by_day[date(2026, 3, 9)][0] == utc(2026, 3, 9, 12)
    assert by_day[date(2026, 3, 9)][-1] == utc(2026, 3, 9, 20)  # 16:00 EDT, ends 18:00
    assert by_day[date(2026, 3, 6)][-1] == utc(2026, 3, 6, 21)  # 16:00 EST


def test_fall_back_week_keeps_local_hours() -> None:
    # US DST ended Sunday 2026-11-01: Saturday 09:00 EDT = 13:00 UTC, Monday 08:00 EST = 13:00 UTC.
    cands = local_candidates(CLINIC, window(utc(2026, 10, 31), utc(2026, 11, 3)), TWO_HOURS, {})
    assert starts(cands)[0] == utc(2026, 10, 31, 13)
    monday = [s for s in starts(cands) if s.astimezone(NY).date() == date(2026, 11, 2)]
    assert monday[0] == utc(2026, 11, 2, 13) and monday[-1] == utc(2026, 11, 2, 21)


def test_hours_across_the_dst_gap_are_really_shorter() -> None:
    night = replace(CLINIC, opening_hours={6: OpeningHours(time(1), time(4))})
    cands = local_candidates(night, window(utc(2026, 3, 8), utc(2026, 3, 9)), ONE_HOUR, {})
    # 01:00 EST (06:00 UTC) to 04:00 EDT (08:00 UTC): two real hours, not three.
    assert starts(cands)[0] == utc(2026, 3, 8, 6)
    assert starts(cands)[-1] == utc(2026, 3, 8, 7)


def test_closures_have_no_slots() -> None:
    clinic = replace(CLINIC, closures=frozenset({date(2026, 3, 3)}))
    cands = local_candidates(clinic, window(ny(2026, 3, 2, 7), ny(2026, 3, 5)), TWO_HOURS, {})
    days = {s.astimezone(NY).date() for s in starts(cands)}
    assert days == {date(2026, 3, 2), date(2026, 3, 4)}


def test_no_slot_when_full_or_window_empty() -> None:
    full_day = {c.id: [Interval(ny(2026, 3, 2, 8), ny(2026, 3, 2, 18))] for c in CLINIC.chairs}
    assert (
        local_candidates(CLINIC, window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), TWO_HOURS, full_day)
        == []
    )
    assert (
        local_candidates(CLINIC, window(ny(2026, 3, 2, 12), ny(2026, 3, 2, 11)), TWO_HOURS, {})
        == []
    )
    assert (
        local_candidates(CLINIC, window(ny(2026, 3, 2, 17), ny(2026, 3, 2, 23)), TWO_HOURS, {})
        == []
    )


def test_naive_window_rejected() -> None:
    with pytest.raises(NaiveTimeError):
        local_candidates(CLINIC, window(datetime(2026, 3, 2, 7), ny(2026, 3, 3)), TWO_HOURS, {})


# -- EHR Slots ---------------------------------------------------------------------------


def run(schedule: str, first: datetime, count: int, prefix: str | None = None) -> list[FreeSlot]:
    step = timedelta(minutes=15)
    return [
        FreeSlot(f"{prefix or schedule}-{i}", schedule, first + i * step, first + (i + 1) * step)
        for i in range(count)
    ]


def test_contiguous_runs_covering_the_duration() -> None:
    slots = run("s1", ny(2026, 3, 2, 8), 8)
    cands = ehr_candidates(slots, window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), TWO_HOURS, NY)
    assert len(cands) == 1
    assert cands[0].slot_ids == tuple(f"s1-{i}" for i in range(8))
    assert (cands[0].start, cands[0].end) == (ny(2026, 3, 2, 8), ny(2026, 3, 2, 10))
    shorter = ehr_candidates(slots, window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), ONE_HOUR, NY)
    assert [c.start for c in shorter] == [
        ny(2026, 3, 2, 8) + timedelta(minutes=15 * i) for i in range(5)
    ]


def test_gaps_and_other_schedules_break_runs() -> None:
    slots = run("s1", ny(2026, 3, 2, 8), 4) + run("s1", ny(2026, 3, 2, 9, 15), 4, "late")
    slots += run("s2", ny(2026, 3, 2, 9), 4)  # would fill the gap, but on another chair
    cands = ehr_candidates(slots, window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), TWO_HOURS, NY)
    assert cands == []


def test_window_edges_for_ehr_runs() -> None:
    slots = run("s1", ny(2026, 3, 2, 8), 16)  # 08:00-12:00
    win = window(ny(2026, 3, 2, 8, 10), ny(2026, 3, 2, 11, 30))
    cands = ehr_candidates(slots, win, ONE_HOUR, NY)
    assert cands[0].start == ny(2026, 3, 2, 8, 15)
    assert cands[-1].end == ny(2026, 3, 2, 11, 30)


def test_ehr_ties_prefer_the_schedule_with_more_free_time_that_day() -> None:
    busy_chair = run("s1", ny(2026, 3, 2, 8), 8)
    free_chair = run("s2", ny(2026, 3, 2, 8), 30)
    cands = ehr_candidates(
        busy_chair + free_chair, window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), TWO_HOURS, NY
    )
    assert [c.chair_id for c in cands[:2]] == ["s2", "s1"]


def test_offset_less_slot_times_are_rejected() -> None:
    naive = FreeSlot("x", "s1", datetime(2026, 3, 2, 8), datetime(2026, 3, 2, 8, 15))
    with pytest.raises(NaiveTimeError, match="Slot/x"):
        ehr_candidates([naive], window(ny(2026, 3, 2, 7), ny(2026, 3, 3)), ONE_HOUR, NY)


# -- properties ----------------------------------------------------------------------------

_cell = st.integers(min_value=0, max_value=4 * 96)  # 15-minute cells over four days


@settings(max_examples=60, deadline=None)
@given(
    busy=st.lists(
        st.tuples(st.sampled_from(["chair-1", "chair-2"]), _cell, st.integers(1, 12)), max_size=25
    ),
    opens_cell=st.integers(0, 96),
)
def test_candidates_are_free_inside_hours_and_complete(busy, opens_cell) -> None:
    two_chairs = replace(CLINIC, chairs=CLINIC.chairs[:2])
    origin = ny(2026, 3, 6)  # a Friday, across the spring DST change
    cell = timedelta(minutes=15)
    intervals: dict[str, list[Interval]] = {}
    for chair, first, length in busy:
        start = origin + first * cell
        intervals.setdefault(chair, []).append(Interval(start, start + length * cell))
    win = window(origin + opens_cell * cell, origin + timedelta(days=4))
    cands = local_candidates(two_chairs, win, TWO_HOURS, intervals)
    assert [c.start for c in cands] == sorted(c.start for c in cands)
    for c in cands:
        opening = two_chairs.opening_on(c.start.astimezone(NY).date())
        assert opening is not None and opening[0] <= c.start and c.end <= opening[1]
        assert win.opens <= c.start and c.end <= win.closes
        assert not any(iv.overlaps(c.start, c.end) for iv in intervals.get(c.chair_id, []))
    # Completeness against brute force over every cell-aligned start in opening hours.
    expected = set()
    for day in range(5):
        opening = two_chairs.opening_on((origin + timedelta(days=day)).date())
        if opening is None:
            continue
        start = opening[0]
        while start + TWO_HOURS <= opening[1]:
            for chair in ("chair-1", "chair-2"):
                free = not any(
                    iv.overlaps(start, start + TWO_HOURS) for iv in intervals.get(chair, [])
                )
                if free and win.holds(start, start + TWO_HOURS):
                    expected.add((chair, start))
            start += cell
    assert {(c.chair_id, c.start) for c in cands} == expected


def _runs_walked(slots: list[FreeSlot], win: BookingWindow, duration: timedelta) -> set:
    """Brute force: from every Slot, walk on through its Schedule's next Slots in start order
    while each starts where the one before ends, until the treatment is covered."""
    found = set()
    for first in slots:
        end = first.start + duration
        if first.end <= first.start or not win.holds(first.start, end):
            continue
        later = sorted(
            (s for s in slots if s.schedule_id == first.schedule_id and s.start > first.start),
            key=lambda s: s.start,
        )
        ids, covered = [first.id], first.end
        for after in later:
            if covered >= end or after.start != covered:
                break
            ids.append(after.id)
            covered = after.end
        if covered >= end:
            found.add((first.schedule_id, first.start, end, tuple(ids)))
    return found


@settings(max_examples=80, deadline=None)
@given(
    slots=st.lists(
        st.tuples(st.sampled_from(["s1", "s2"]), st.integers(0, 40), st.sampled_from([1, 1, 2])),
        max_size=40,
        unique_by=lambda t: (t[0], t[1]),
    ),
    opens_cell=st.integers(0, 8),
)
def test_ehr_runs_are_exactly_the_contiguous_ones(slots, opens_cell) -> None:
    """Slots of 15 and 30 minutes, gaps, and overlapping Slots: every run that covers the
    treatment inside the window, and only those (one Slot per start and Schedule)."""
    origin, cell = ny(2026, 3, 2, 8), timedelta(minutes=15)
    free = [
        FreeSlot(f"{sid}-{first}", sid, origin + first * cell, origin + (first + length) * cell)
        for sid, first, length in slots
    ]
    win = window(origin + opens_cell * cell, origin + 36 * cell)
    cands = ehr_candidates(free, win, ONE_HOUR, NY)
    assert {(c.chair_id, c.start, c.end, c.slot_ids) for c in cands} == _runs_walked(
        free, win, ONE_HOUR
    )
    assert len(cands) == len({(c.chair_id, c.start) for c in cands})
