"""Slot choice: which chair-time to try first, locally or among an EHR's free Slots (pure)."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from .clinic import Clinic
from .window import BookingWindow, require_aware


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class Candidate:
    """A chair (or EHR Schedule) and a time; `slot_ids` are the EHR Slots covering it."""

    chair_id: str
    start: datetime
    end: datetime
    slot_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FreeSlot:
    id: str
    schedule_id: str
    start: datetime
    end: datetime


class _BusyIndex:
    """One chair's busy intervals, answering "is [start, end) free?" in O(log n)."""

    def __init__(self, intervals: Iterable[Interval]) -> None:
        ordered = sorted(intervals)
        self.intervals = ordered
        self._starts = [iv.start for iv in ordered]
        self._max_end: list[datetime] = []  # running maximum: intervals may overlap
        for iv in ordered:
            self._max_end.append(max(iv.end, self._max_end[-1]) if self._max_end else iv.end)

    def is_free(self, start: datetime, end: datetime) -> bool:
        before_end = bisect_left(self._starts, end)  # intervals starting before `end`
        return before_end == 0 or self._max_end[before_end - 1] <= start


def _local_days(window: BookingWindow, zone: tzinfo) -> Iterator[date]:
    day = window.opens.astimezone(zone).date()
    last = window.closes.astimezone(zone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _grid(
    opens: datetime, closes: datetime, window: BookingWindow, cell: timedelta, duration: timedelta
) -> Iterator[datetime]:
    """Cell-aligned starts (counted from the opening) whose whole treatment fits both."""
    start = opens
    if window.opens > opens:
        cells = -((opens - window.opens) // cell)  # ceiling division on timedeltas
        start = opens + cells * cell
    latest_end = min(closes, window.closes)
    while start + duration <= latest_end:
        yield start
        start += cell


def _busy_minutes(intervals: Sequence[Interval], opens: datetime, closes: datetime) -> float:
    total = timedelta()
    for iv in intervals:
        if iv.overlaps(opens, closes):
            total += min(iv.end, closes) - max(iv.start, opens)
    return total.total_seconds() / 60


def local_candidates(
    clinic: Clinic,
    window: BookingWindow,
    duration: timedelta,
    busy: Mapping[str, Iterable[Interval]],
) -> list[Candidate]:
    """Every free (chair, start, end) in the window: earliest first, then least-booked chair."""
    require_aware(window.opens, "window opening")
    require_aware(window.closes, "window closing")
    busy_by_chair = {c.id: _BusyIndex(busy.get(c.id, ())) for c in clinic.chairs}
    ranked: list[tuple[datetime, float, int, Candidate]] = []
    for day in _local_days(window, clinic.zone):
        opening = clinic.opening_on(day)
        if opening is None:
            continue
        load = {cid: _busy_minutes(ix.intervals, *opening) for cid, ix in busy_by_chair.items()}
        for start in _grid(*opening, window, clinic.cell, duration):
            end = start + duration
            for index, chair in enumerate(clinic.chairs):
                if busy_by_chair[chair.id].is_free(start, end):
                    ranked.append((start, load[chair.id], index, Candidate(chair.id, start, end)))
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked]


def _by_schedule(slots: Iterable[FreeSlot]) -> dict[str, list[FreeSlot]]:
    grouped: dict[str, list[FreeSlot]] = defaultdict(list)
    seen: set[str] = set()
    for slot in slots:
        if slot.start.utcoffset() is None or slot.end.utcoffset() is None:  # naive: say which
            require_aware(slot.start, f"Slot/{slot.id} start")
            require_aware(slot.end, f"Slot/{slot.id} end")
        if slot.id not in seen and slot.end > slot.start:
            seen.add(slot.id)
            grouped[slot.schedule_id].append(slot)
    return {sid: sorted(seq, key=lambda s: s.start) for sid, seq in grouped.items()}


def _local_day(at: datetime, zone: tzinfo, known: dict[datetime, date]) -> date:
    day = known.get(at)
    if day is None:
        day = known[at] = at.astimezone(zone).date()
    return day


def ehr_candidates(
    slots: Iterable[FreeSlot],
    window: BookingWindow,
    duration: timedelta,
    zone: tzinfo,
) -> list[Candidate]:
    """Runs of contiguous free Slots on one Schedule covering `duration` inside the window.

    Earliest first; ties go to the Schedule with the most free time that (local) day, the
    nearest thing to "least booked" that free Slots alone can tell.
    """
    ranked: list[tuple[datetime, int, str, Candidate]] = []
    local_days: dict[datetime, date] = {}  # the Schedules' Slots share their start times
    opens, closes = window.opens, window.closes
    for schedule_id, seq in _by_schedule(slots).items():
        days = [_local_day(slot.start, zone, local_days) for slot in seq]
        free_per_day = Counter(days)
        ids = [slot.id for slot in seq]
        ends = [slot.end for slot in seq]
        # The last index of the contiguous stretch (each Slot starting where the one before
        # ends) that each Slot belongs to: a run never reaches past it.
        stretch_end = list(range(len(seq)))
        for index in range(len(seq) - 2, -1, -1):
            if seq[index + 1].start == ends[index]:
                stretch_end[index] = stretch_end[index + 1]
        last = 0  # the run's last Slot: runs start later and end later, so it only moves on
        for index, first in enumerate(seq):
            start = first.start
            end = start + duration
            if not (opens <= start and end <= closes):
                continue
            last = max(last, index)
            while ends[last] < end and last < stretch_end[index]:
                last += 1
            if ends[last] >= end:
                candidate = Candidate(schedule_id, start, end, tuple(ids[index : last + 1]))
                ranked.append((start, -free_per_day[days[index]], schedule_id, candidate))
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked]
