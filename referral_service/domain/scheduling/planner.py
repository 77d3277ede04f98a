"""The series planner: a referral's whole course of visits under chair and nurse rules (pure).

The priority window bounds the first visit (days to treatment is what patients feel); later
visits follow the series' spacing. A referrer's occurrence period bounds every visit; an
occurrence date fixes the first visit's day. Among the days whose whole series fits, the earliest
wins. Every first visit takes the earliest start the hard rules allow on its day (the nurse rules
still stagger the starts): referrals arriving later can only use times after their arrival and
lead time, so leaving the later times free gives them a same- or next-day first visit
(bench/scheduling.py: mean days to first infusion within 15 % of the optimum). A series' later
visits, whose days are fixed by the spacing, take the start that keeps nurse phases apart and the
census flattest (on the eve of a short day, the earliest); so do first visits on a short day
(short_days.py: its own arrivals can hardly use it, and its one nurse makes the packing count).
A referral that can wait (not stat or asap) leaves a short day followed by a closed day room for
more visits, unless no day of its window can (see RESERVE_VISITS). Same inputs, same plan.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from .chair_day import NO_ROOM_STAGES, ChairDay, Placement, Shape
from .clinic import Clinic, Protocol
from .nursing import CONSECUTIVE_OPEN_DAYS
from .rules import Visit
from .short_days import ShortDays
from .slots import Candidate
from .window import BookingWindow, require_aware

EARLIEST_FIRST = ("stat", "asap")
# Referrals that cannot wait: a referral of any other priority (its window has slack: urgent's
# 3 days reach past a weekend) leaves a short day before a closed day room for RESERVE_VISITS
# more visits like its own after its opening (one more between two closures: ShortDays), unless
# no day of its window can (bench/scheduling.py: late referrals were stat/asap ones arriving on a
# Friday afternoon, and urgent ones before New Year, to find Saturday taken by work with slack).
CANNOT_WAIT = ("stat", "asap")
RESERVE_VISITS = 1
LOOK_BEYOND_DAYS = 56  # how far past the window "the first date it would fit" is sought
_MAX_GAP_DAYS = 14  # consecutive open days further apart than this are not a series


@dataclass(frozen=True)
class Occurrence:
    """ServiceRequest.occurrence[x]: a period bounding every visit, or a date for the first."""

    opens: datetime | None = None
    closes: datetime | None = None
    first_visit_only: bool = False

    @classmethod
    def on_day(cls, day: date, zone: tzinfo) -> Occurrence:
        opens = datetime.combine(day, time(), tzinfo=zone)
        return cls(opens, datetime.combine(day + timedelta(days=1), time(), tzinfo=zone), True)

    def holds(self, start: datetime, end: datetime, first: bool) -> bool:
        if self.first_visit_only and not first:
            return True
        return (self.opens is None or self.opens <= start) and (
            self.closes is None or end <= self.closes
        )


@dataclass(frozen=True)
class SeriesRequest:
    protocol: str
    priority: str
    window: BookingWindow
    occurrence: Occurrence = Occurrence()


@dataclass(frozen=True)
class RepeatDue:
    """The next course falls due in [earliest, latest] (local days)."""

    earliest: date
    latest: date


@dataclass(frozen=True)
class Plan:
    visits: tuple[Visit, ...]
    repeat_due: RepeatDue | None = None
    slot_ids: tuple[tuple[str, ...], ...] = ()  # per visit, the EHR Slots of its candidate
    takes_reserve: bool = False  # no day given kept a short day's reserve (EHR: try later ranges)


@dataclass(frozen=True)
class NoRoom:
    """Why no series fits: the constraint that had no room and the first day it would fit."""

    constraint: str  # "window", "occurrence", "hours", "chairs", "nurse ratio", "nurse starts"
    detail: str
    first_fit: date | None


def series_days(clinic: Clinic, first: date, protocol: Protocol) -> list[date] | None:
    """The course's visit days from `first`, or None when the spacing cannot be kept."""
    series = protocol.course.series
    days = [first]
    while len(days) < series.visits:
        if series.spacing == CONSECUTIVE_OPEN_DAYS:
            day = days[-1] + timedelta(days=1)
            while clinic.opening_on(day) is None and day - days[-1] <= timedelta(_MAX_GAP_DAYS):
                day += timedelta(days=1)
        else:
            day = days[-1] + timedelta(days=series.every_days)
        if clinic.opening_on(day) is None:
            return None
        days.append(day)
    return days


class _Search:
    """One planning call: candidate starts by day, each day's load built once and reused."""

    def __init__(
        self,
        clinic: Clinic,
        request: SeriesRequest,
        booked: Sequence[Visit],
        candidates: Sequence[Candidate] | None,
    ) -> None:
        self.clinic, self.request = clinic, request
        self.protocol = clinic.protocol(request.protocol)
        self.zone = clinic.zone
        self.booked: dict[date, list[Visit]] = defaultdict(list)
        # Only the window's days and later are ever planned; two days' margin covers the local
        # day the window opens on (a DST day is 25 hours).
        since = request.window.opens - timedelta(days=2)
        for visit in booked:
            if visit.start >= since:
                self.booked[visit.start.astimezone(self.zone).date()].append(visit)
        self.given: dict[date, list[Candidate]] | None = None
        if candidates is not None:
            self.given = defaultdict(list)
            duration = self.protocol.duration
            days: dict[datetime, date] = {}  # the chairs' candidates share their starts
            for cand in candidates:
                require_aware(cand.start, "candidate start")
                if cand.end - cand.start == duration:
                    day = days.get(cand.start)
                    if day is None:
                        day = days[cand.start] = cand.start.astimezone(self.zone).date()
                    self.given[day].append(cand)
        self.chairs = self._chair_order(candidates)
        # On an EHR's Slots the chairs are its Schedules: the clinic file's own chair ids, kept
        # in `chairs` for their order, are not room the reserve may count on.
        self.offered = None if candidates is None else frozenset(c.chair_id for c in candidates)
        self.days: dict[date, ChairDay | None] = {}
        self.found: dict[tuple[date, bool, SeriesRequest], Placement | int] = {}
        self.reserve = 0 if request.priority in CANNOT_WAIT else RESERVE_VISITS
        self.short_days = ShortDays(clinic)
        self.spared: dict[tuple[date, Placement], bool] = {}

    def _chair_order(self, candidates: Sequence[Candidate] | None) -> list[str]:
        chairs = [c.id for c in self.clinic.chairs]
        if candidates is not None:  # EHR Schedules: the clinic's order, then by id
            chairs += sorted({c.chair_id for c in candidates} - set(chairs))
        return chairs

    def chair_day(self, day: date) -> ChairDay | None:
        if day not in self.days:
            opening = self.clinic.opening_on(day)
            extra = [c.start for c in (self.given or {}).get(day, ())]
            self.days[day] = opening and ChairDay(
                self.clinic, *opening, self.booked.get(day, []), self.chairs, extra
            )
        return self.days[day]

    def starts(
        self, load: ChairDay, day: date
    ) -> Iterator[tuple[str | None, datetime, tuple[str, ...]]]:
        """(chair or None for any chair, start, EHR Slot ids) the candidates allow that day."""
        if self.given is None:
            start = load.opens
            while start + self.protocol.duration <= load.closes:
                yield None, start, ()
                start += self.clinic.cell
        else:
            for cand in self.given.get(day, ()):
                yield cand.chair_id, cand.start, cand.slot_ids

    def best(self, day: date, first: bool) -> Placement | int:
        """The day's best placement, or the furthest stage (-1 outside window/occurrence)."""
        key = (day, first, self.request)
        if key not in self.found:
            self.found[key] = self._best(day, first)
        return self.found[key]

    def _best(self, day: date, first: bool) -> Placement | int:
        if self.given is not None and not self.given.get(day):
            # No chair time on offer that day (an EHR range that was not searched, or a full
            # day): the same answer as an empty day's, without building the day's load.
            return -2 if self.clinic.opening_on(day) is None else -1
        load = self.chair_day(day)
        if load is None:
            return -2
        length, start_len, end_len = _shape(self.protocol, load.tick)
        # A first visit takes the earliest start on its day: referrals arriving later can only
        # use times after their arrival and lead time, so the day's later times are theirs. Not
        # on a short day: few of its own arrivals can use it (Saturday 9-13 with 2 hours' lead),
        # and with one nurse, spread phases fit 4 two-hour visits where the earliest starts fit 3.
        # A later visit is levelled, except on the eve of a short day, whose own arrivals have
        # only its afternoon before the scarce short day.
        short = self.short_days
        earliest = self.request.priority in EARLIEST_FIRST or (
            not short.is_short(day) if first else short.is_eve(day)
        )
        stage, best = -1, None
        for chair, start, slot_ids in self.starts(load, day):
            end = start + self.protocol.duration
            s = load.index_of(start)
            if s is None or s + length > load.size or not self._allowed(start, end, first):
                continue
            passed = load.stage_passed(s, length, start_len, end_len)
            if passed < 3:
                stage = max(stage, passed if self._any_chair(load, chair, s, length) else 0)
                continue
            chosen = self._pick_chair(load, chair, s, length)
            if chosen is None:
                stage = max(stage, 0)
                continue
            snug, rank, chair_id = chosen
            level = (0, 0, 0) if earliest else load.level_key(s, length, start_len, end_len)
            key = (*level[:2], 0 if snug or earliest else 1, level[2], s, rank)
            placement = Placement(key, chair_id, start, slot_ids)
            if best is None or placement < best:
                best = placement
            if earliest and self.given is None:
                break  # the clinic's own cells come in time order: nothing later ranks better
        return best if best is not None else stage

    def leaves_reserve(self, day: date, placement: Placement) -> bool:
        """After `placement`, the day still has room for the reserve's visits (from the opening
        of this referral's window: later referrals cannot use earlier times)."""
        reserve = self.short_days.reserve_on(day, self.reserve)
        if not reserve:
            return True
        key = (day, placement)
        if key not in self.spared:
            load = self.chair_day(day)
            assert load is not None
            own = _shape(self.protocol, load.tick)
            after = -int(
                -(self.request.window.opens - load.opens).total_seconds() // 60 // load.tick
            )
            spare = load.spare_visits((placement, own), own, after, reserve, self.offered)
            self.spared[key] = spare >= reserve
        return self.spared[key]

    def _allowed(self, start: datetime, end: datetime, first: bool) -> bool:
        if first and not self.request.window.holds(start, end):
            return False
        return self.request.occurrence.holds(start, end, first)

    def _any_chair(self, load: ChairDay, chair: str | None, s: int, length: int) -> bool:
        chairs = self.chairs if chair is None else [chair]
        return any(load.chair_free(c, s, length) for c in chairs)

    def _pick_chair(
        self, load: ChairDay, chair: str | None, s: int, length: int
    ) -> tuple[bool, int, str] | None:
        """(snug, rank, chair): a chair that fits against a neighbour, then the least booked."""
        options = []
        for rank, cid in enumerate(self.chairs if chair is None else [chair]):
            if load.chair_free(cid, s, length):
                order = (0 if load.snug(cid, s, length) else 1, load.load[cid], rank)
                options.append((order, cid))
        if not options:
            return None
        order, cid = min(options)
        return order[0] == 0, order[1] * len(self.chairs) + order[2], cid


def _shape(protocol: Protocol, tick: int) -> Shape:
    course = protocol.course
    return (
        protocol.minutes // tick,
        course.nurse_start_minutes // tick,
        course.nurse_end_minutes // tick,
    )


def _candidate_days(search: _Search, beyond: bool) -> Iterator[date]:
    window = search.request.window
    day = window.opens.astimezone(search.zone).date()
    last = window.closes.astimezone(search.zone).date()
    if beyond:
        day, last = last + timedelta(days=1), last + timedelta(days=LOOK_BEYOND_DAYS)
    while day <= last:
        yield day
        day += timedelta(days=1)


def _series_at(search: _Search, first: date, reserve: bool = False) -> list[Placement] | int:
    days = series_days(search.clinic, first, search.protocol)
    if days is None:
        return -2
    placements = []
    for index, day in enumerate(days):
        found = search.best(day, first=index == 0)
        if not isinstance(found, Placement):
            return found
        placements.append(found)
    if reserve and not all(
        search.leaves_reserve(d, p) for d, p in zip(days, placements, strict=True)
    ):
        return -3
    return placements


def _visits(search: _Search, placements: list[Placement]) -> tuple[Visit, ...]:
    return tuple(
        Visit.of(search.clinic, search.request.protocol, p.chair_id, p.start) for p in placements
    )


def repeat_due(protocol: Protocol, first: date) -> RepeatDue | None:
    """When the course repeats, its first visit on the clinic day `first`."""
    repeat = protocol.course.repeat
    if repeat is None:
        return None
    due = first + timedelta(days=repeat.every_days)
    return RepeatDue(due - timedelta(repeat.tolerance_days), due + timedelta(repeat.tolerance_days))


def _first_fit_beyond(search: _Search) -> date | None:
    """The first day past the window on which the series would fit (ignoring the occurrence)."""
    relaxed = copy.copy(search)  # shares the day loads already built
    relaxed.request = SeriesRequest(
        search.request.protocol,
        search.request.priority,
        BookingWindow(
            search.request.window.opens,
            search.request.window.closes + timedelta(days=LOOK_BEYOND_DAYS + 1),
        ),
    )
    window_days = list(_candidate_days(search, beyond=False))
    for day in [*window_days, *_candidate_days(search, beyond=True)]:
        if isinstance(_series_at(relaxed, day), list):
            return day
    return None


def _no_room(search: _Search, stages: list[int]) -> NoRoom:
    first_fit = _first_fit_beyond(search)
    window = search.request.window
    if window.is_empty:
        return NoRoom("window", "the booking window is empty", first_fit)
    if not stages or max(stages) == -2:
        return NoRoom("hours", "no open day in the window starts the series", first_fit)
    if max(stages) == -1 and search.request.occurrence != Occurrence():
        return NoRoom("occurrence", "no start in the window meets the occurrence", first_fit)
    if max(stages) == -1:
        return NoRoom("window", "no start in the window's opening hours", first_fit)
    worst = max(stages)
    counts = {NO_ROOM_STAGES[s]: stages.count(s) for s in range(3) if s in stages}
    detail = ", ".join(f"{name} on {n} day(s)" for name, n in counts.items())
    return NoRoom(NO_ROOM_STAGES[worst], f"no room in the window: {detail}", first_fit)


def plan_series(
    clinic: Clinic,
    request: SeriesRequest,
    booked: Sequence[Visit],
    candidates: Sequence[Candidate] | None = None,
    *,
    explain: bool = True,
) -> Plan | NoRoom:
    """The course's visits (the earliest day the whole series fits), or why none fits.

    `booked` holds the booked and held visits; `candidates` the chair times on offer (an EHR's
    free Slots as Candidates), or None for every cell of the clinic's own chairs. `explain=False`
    (a caller that will look further anyway) leaves the NoRoom's constraint and first date
    unsought: "no room" costs no search past the window.
    """
    search = _Search(clinic, request, booked, candidates)
    for reserve in (True, False) if search.reserve else (False,):
        stages: list[int] = []
        for day in _candidate_days(search, beyond=False):
            found = _series_at(search, day, reserve)
            if isinstance(found, list):
                slots = tuple(p.slot_ids for p in found) if candidates is not None else ()
                taken = search.reserve > 0 and not reserve
                return Plan(_visits(search, found), repeat_due(search.protocol, day), slots, taken)
            stages.append(found)
    if not explain:
        return NoRoom("unexplained", "no room in the candidates given", None)
    return _no_room(search, stages)
