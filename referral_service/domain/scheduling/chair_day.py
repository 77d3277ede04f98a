"""One open day's load on a tick grid: chairs, census and nurse phases, and where a visit fits."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import gcd

from .clinic import Clinic
from .rules import Visit

UNLIMITED = 10**6
NO_ROOM_STAGES = ("chairs", "nurse ratio", "nurse starts")
Shape = tuple[int, int, int]  # a visit in ticks: length, nurse start, nurse end


@dataclass(frozen=True, order=True)
class Placement:
    """A feasible start, ranked: lower `key` is better."""

    key: tuple[int, ...]
    chair_id: str
    start: datetime
    slot_ids: tuple[str, ...] = ()


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def tick_minutes(clinic: Clinic, day_opens: datetime, times: Iterable[datetime]) -> int:
    """The coarsest grid (minutes) on which every boundary of the day falls exactly."""
    step = clinic.cell_minutes
    for protocol in clinic.protocols.values():
        course = protocol.course
        step = gcd(step, protocol.minutes, course.nurse_start_minutes, course.nurse_end_minutes)
    day = day_opens.astimezone(clinic.zone).date()
    edges = [t for t in times]
    if clinic.staffing is not None:
        for band in clinic.staffing.bands.get(day.weekday(), ()):
            for clock in (band.starts, band.ends):
                edges.append(datetime.combine(day, clock, tzinfo=clinic.zone))
    for edge in edges:
        step = gcd(step, _minutes(edge - day_opens))
    return max(step, 1)


class ChairDay:
    """Chairs, patients in chairs and nurse phases per tick of one open day."""

    def __init__(
        self,
        clinic: Clinic,
        opens: datetime,
        closes: datetime,
        booked: Sequence[Visit],
        chair_ids: Sequence[str],
        extra_times: Iterable[datetime] = (),
    ) -> None:
        self.opens, self.closes = opens, closes
        times = [t for v in booked for t in (v.start, v.end)] + list(extra_times)
        self.tick = tick_minutes(clinic, opens, times)
        self.size = _minutes(closes - opens) // self.tick
        self.nurses = self._nurses_per_tick(clinic)
        ratio = clinic.staffing.patients_per_nurse if clinic.staffing else 1
        self.census_cap = [n * ratio if n < UNLIMITED else UNLIMITED for n in self.nurses]
        self.census = [0] * self.size
        self.phases = [0] * self.size
        self.busy = {cid: bytearray(self.size) for cid in chair_ids}
        for visit in booked:
            self._add(visit)
        self.free_run = {cid: self._free_runs(b) for cid, b in self.busy.items()}
        self.load = {cid: sum(b) for cid, b in self.busy.items()}

    def _nurses_per_tick(self, clinic: Clinic) -> list[int]:
        """Nurses on duty in each tick: each band of the day laid on the grid (bands do not
        overlap; a tick belongs to the band its start falls in, as `nurses_on_duty` says)."""
        if clinic.staffing is None:
            return [UNLIMITED] * self.size
        nurses = [0] * self.size
        day = self.opens.astimezone(clinic.zone).date()
        for band in clinic.staffing.bands.get(day.weekday(), ()):
            first = self._first_tick_from(datetime.combine(day, band.starts, tzinfo=clinic.zone))
            last = self._first_tick_from(datetime.combine(day, band.ends, tzinfo=clinic.zone))
            for i in range(max(0, first), min(self.size, last)):
                nurses[i] = band.nurses
        return nurses

    def _first_tick_from(self, at: datetime) -> int:
        """The first tick starting at or after `at` (may lie outside the day)."""
        seconds = int((at - self.opens).total_seconds())
        return -(-seconds // (self.tick * 60))

    def _ticks(self, start: int, end: int) -> range:
        """Ticks covered by minutes [start, end) from opening, clipped and widened to ticks."""
        return range(max(0, start // self.tick), min(self.size, -(-end // self.tick)))

    def _add(self, visit: Visit) -> None:
        # Integer minutes from opening: this runs for every booked visit of every day planned.
        start = _minutes(visit.start - self.opens)
        end = _minutes(visit.end - self.opens)
        busy = self.busy.get(visit.chair_id)
        for i in self._ticks(start, end):
            self.census[i] += 1
            if busy is not None:
                busy[i] = 1
        if visit.nurse_start_minutes:
            for i in self._ticks(start, start + visit.nurse_start_minutes):
                self.phases[i] += 1
        if visit.nurse_end_minutes:
            for i in self._ticks(end - visit.nurse_end_minutes, end):
                self.phases[i] += 1

    @staticmethod
    def _free_runs(busy: bytearray) -> list[int]:
        runs = [0] * (len(busy) + 1)
        for i in range(len(busy) - 1, -1, -1):
            runs[i] = 0 if busy[i] else runs[i + 1] + 1
        return runs

    def index_of(self, start: datetime) -> int | None:
        minutes = (start - self.opens).total_seconds() / 60
        if minutes < 0 or minutes % self.tick:
            return None
        return int(minutes) // self.tick

    def stage_passed(self, s: int, length: int, start_len: int, end_len: int) -> int:
        """How far a visit at tick s gets without the chair: 3 = nurse ratio and phases hold."""
        census, cap, phases, nurses = self.census, self.census_cap, self.phases, self.nurses
        for i in range(s, s + length):
            if census[i] >= cap[i]:
                return 1
        for i in (*range(s, s + start_len), *range(s + length - end_len, s + length)):
            if phases[i] >= nurses[i]:
                return 2
        return 3

    def level_key(self, s: int, length: int, start_len: int, end_len: int) -> tuple[int, int, int]:
        """Phase clashes nearby, peak census and census total: lower keeps the day flatter."""
        phases = self.phases
        window = range(max(0, s - start_len), min(self.size, s + 2 * start_len))
        near_starts = sum(phases[i] for i in window)
        near_ends = sum(phases[i] for i in range(s + length - end_len, s + length))
        covered = self.census[s : s + length]
        return near_starts + near_ends, max(covered), sum(covered)

    def snug(self, chair_id: str, s: int, length: int) -> bool:
        """The visit would sit against the day's edge or another visit in that chair."""
        runs = self.free_run[chair_id]
        before = s == 0 or runs[s - 1] == 0
        after = s + length == self.size or runs[s + length] == 0
        return before or after

    def spare_visits(
        self,
        taken: tuple[Placement, Shape],
        shape: Shape,
        after: int,
        limit: int,
        chairs: Collection[str] | None = None,
    ) -> int:
        """How many more visits of `shape` (ticks: length, nurse start, nurse end) still fit
        from tick `after` once `taken` is booked, placed greedily earliest first (up to `limit`),
        on `chairs` (default: every chair of the day).
        """
        census, phases = self.census[:], self.phases[:]
        busy = {
            cid: bytearray(b) for cid, b in self.busy.items() if chairs is None or cid in chairs
        }

        def place(s: int, chair_id: str, shape: Shape) -> None:
            length, start_len, end_len = shape
            for i in range(s, s + length):
                census[i] += 1
                busy[chair_id][i] = 1
            for i in (*range(s, s + start_len), *range(s + length - end_len, s + length)):
                phases[i] += 1

        first = self.index_of(taken[0].start)
        if first is None or taken[0].chair_id not in busy:
            return 0
        place(first, taken[0].chair_id, taken[1])
        length, start_len, end_len = shape
        count, s = 0, max(0, after)
        cap, nurses = self.census_cap, self.nurses
        while count < limit and s + length <= self.size:
            nursing = all(census[i] < cap[i] for i in range(s, s + length)) and all(
                phases[i] < nurses[i]
                for i in (*range(s, s + start_len), *range(s + length - end_len, s + length))
            )
            chair = next((c for c, b in busy.items() if not any(b[s : s + length])), None)
            if nursing and chair is not None:
                place(s, chair, shape)
                count += 1
            else:
                s += 1
        return count

    def chair_free(self, chair_id: str, s: int, length: int) -> bool:
        runs = self.free_run.get(chair_id)
        return runs is not None and runs[s] >= length
