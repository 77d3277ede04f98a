"""The offline optimum for bench/scheduling.py: OR-Tools CP-SAT over the whole demand at once.

Each referral picks a first day (a boolean per candidate day); each visit a start on the cell
grid of the day its series puts it on. Identical chairs make a chair count a cumulative limit
(an interval graph with at most C overlaps is C-colourable, so chairs are assigned afterwards);
nurses on duty vary by band, so the census and nurse-phase limits are cumulatives whose capacity
is lowered by fixed blocking intervals. Objective, lexicographic by weights: referrals booked
(heaviest), then first visit inside the window, then calendar days to the first visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ortools.sat.python import cp_model

from bench.scheduling_demand import Booked, Referral
from referral_service.domain.scheduling.clinic import Clinic
from referral_service.domain.scheduling.planner import series_days
from referral_service.domain.scheduling.rules import Visit, nurses_on_duty

UNBOOKED_WEIGHT = 1_000_000
LATE_WEIGHT = 1_000
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class OptimumResult:
    schedule: list[Booked]
    status: str
    objective: float
    bound: float
    seconds: float


def _minute(at: datetime) -> int:
    return int((at - EPOCH).total_seconds() // 60)


def _minute_after(at: datetime) -> int:
    """The first whole minute at or after `at` (a window opening may fall mid-minute)."""
    return -int(-(at - EPOCH).total_seconds() // 60)


def _at(minute: int) -> datetime:
    return EPOCH + timedelta(minutes=minute)


def _grid(clinic: Clinic, day: date, minutes: int) -> list[int]:
    opening = clinic.opening_on(day)
    if opening is None:
        return []
    start, out = opening[0], []
    while start + timedelta(minutes=minutes) <= opening[1]:
        out.append(_minute(start))
        start += clinic.cell
    return out


def _nurse_steps(clinic: Clinic, day: date) -> list[tuple[int, int, int]]:
    """(from, to, nurses) over the day's opening, in minutes."""
    opening = clinic.opening_on(day)
    assert opening is not None and clinic.staffing is not None
    cuts = {_minute(opening[0]), _minute(opening[1])}
    for band in clinic.staffing.bands.get(day.weekday(), ()):
        for clock in (band.starts, band.ends):
            at = _minute(datetime.combine(day, clock, tzinfo=clinic.zone))
            if _minute(opening[0]) < at < _minute(opening[1]):
                cuts.add(at)
    points = sorted(cuts)
    return [
        (a, b, nurses_on_duty(clinic, _at(a)) or 0)
        for a, b in zip(points, points[1:], strict=False)
    ]


class _Model:
    def __init__(self, clinic: Clinic, demand: list[Referral], slack_days: int) -> None:
        self.clinic, self.demand = clinic, demand
        self.model = cp_model.CpModel()
        self.slack = slack_days
        self.choice: dict[str, dict[date, cp_model.IntVar]] = {}
        self.starts: dict[str, list[cp_model.IntVar]] = {}
        self.unbooked: dict[str, cp_model.IntVar] = {}
        self.late: dict[str, cp_model.IntVar] = {}
        self.visits: list[tuple[cp_model.IntervalVar, list[cp_model.IntervalVar]]] = []
        self.days: set[date] = set()
        self.cost: list[cp_model.LinearExprT] = []

    def _first_days(self, referral: Referral) -> list[date]:
        zone = self.clinic.zone
        day = referral.window.opens.astimezone(zone).date()
        last = referral.window.closes.astimezone(zone).date() + timedelta(self.slack)
        return [day + timedelta(n) for n in range((last - day).days + 1)]

    def add(self, referral: Referral) -> None:
        m, clinic = self.model, self.clinic
        protocol = clinic.protocol(referral.protocol)
        received_day = referral.received.astimezone(clinic.zone).date()
        options: dict[date, list[date]] = {}
        for first in self._first_days(referral):
            days = series_days(clinic, first, protocol)
            grid = _grid(clinic, first, protocol.minutes)
            grid = [s for s in grid if s >= _minute_after(referral.window.opens)]
            if days is not None and grid:
                options[first] = days
        choice = {first: m.NewBoolVar("") for first in options}
        unbooked = m.NewBoolVar("")
        m.AddExactlyOne([*choice.values(), unbooked])
        late = m.NewBoolVar("")
        starts = []
        course = protocol.course
        for k in range(protocol.course.series.visits):
            values = sorted(
                {s for days in options.values() for s in _grid(clinic, days[k], protocol.minutes)}
            )
            self.days.update(days[k] for days in options.values())
            start = m.NewIntVarFromDomain(cp_model.Domain.FromValues(values or [0]), "")
            present = unbooked.Not()
            visit = m.NewOptionalFixedSizeIntervalVar(start, protocol.minutes, present, "")
            phases = []
            if course.nurse_start_minutes:
                phases.append(
                    m.NewOptionalFixedSizeIntervalVar(
                        start, course.nurse_start_minutes, present, ""
                    )
                )
            if course.nurse_end_minutes:
                end_phase = start + protocol.minutes - course.nurse_end_minutes
                phases.append(
                    m.NewOptionalFixedSizeIntervalVar(
                        end_phase, course.nurse_end_minutes, present, ""
                    )
                )
            self.visits.append((visit, phases))
            for first, days in options.items():
                opens, closes = self.clinic.opening_on(days[k]) or (EPOCH, EPOCH)
                m.Add(start >= _minute(opens)).OnlyEnforceIf(choice[first])
                m.Add(start + protocol.minutes <= _minute(closes)).OnlyEnforceIf(choice[first])
                if k == 0:
                    m.Add(start >= _minute_after(referral.window.opens)).OnlyEnforceIf(
                        choice[first]
                    )
            starts.append(start)
        m.Add(starts[0] + protocol.minutes <= _minute(referral.window.closes)).OnlyEnforceIf(
            [late.Not(), unbooked.Not()]
        )
        self.cost.append(UNBOOKED_WEIGHT * unbooked + LATE_WEIGHT * late)
        self.cost.extend((first - received_day).days * var for first, var in choice.items())
        self.choice[referral.id], self.starts[referral.id] = choice, starts
        self.unbooked[referral.id], self.late[referral.id] = unbooked, late

    def limits(self) -> None:
        """Chairs, patients per nurse and one nurse phase per nurse, as cumulatives."""
        m, clinic = self.model, self.clinic
        visits = [v for v, _ in self.visits]
        phases = [p for _, ps in self.visits for p in ps]
        m.AddCumulative(visits, [1] * len(visits), len(clinic.chairs))
        if clinic.staffing is None:
            return
        ratio = clinic.staffing.patients_per_nurse
        most = max((n for d in self.days for _, _, n in _nurse_steps(clinic, d)), default=0)
        census_block, phase_block = [], []
        for day in sorted(self.days):
            for a, b, nurses in _nurse_steps(clinic, day):
                if nurses < most:
                    block = m.NewFixedSizeIntervalVar(a, b - a, "")
                    census_block.append((block, (most - nurses) * ratio))
                    phase_block.append((block, most - nurses))
        m.AddCumulative(
            visits + [b for b, _ in census_block],
            [1] * len(visits) + [d for _, d in census_block],
            most * ratio,
        )
        m.AddCumulative(
            phases + [b for b, _ in phase_block],
            [1] * len(phases) + [d for _, d in phase_block],
            most,
        )

    def hint(self, schedule: list[Booked]) -> None:
        """Start from a known schedule (the online scheduler's) so the solver only improves."""
        for booked in schedule:
            rid = booked.referral.id
            if not booked.visits:
                self.model.AddHint(self.unbooked[rid], 1)
                continue
            first = booked.visits[0].start.astimezone(self.clinic.zone).date()
            for day, var in self.choice[rid].items():
                self.model.AddHint(var, int(day == first))
            self.model.AddHint(self.unbooked[rid], 0)
            for var, visit in zip(self.starts[rid], booked.visits, strict=True):
                self.model.AddHint(var, _minute(visit.start))
            late = not booked.referral.window.holds(booked.visits[0].start, booked.visits[0].end)
            self.model.AddHint(self.late[booked.referral.id], int(late))


def _assign_chairs(
    clinic: Clinic, timed: list[tuple[Referral, list[tuple[int, int]]]]
) -> list[Booked]:
    """Greedy interval colouring by start time: never more than the chairs at once."""
    free_at = {c.id: 0 for c in clinic.chairs}
    by_start = sorted(
        (start, end, referral.id, k)
        for referral, visits in timed
        for k, (start, end) in enumerate(visits)
    )
    chair_of: dict[tuple[str, int], str] = {}
    for start, end, rid, k in by_start:
        chair = next(c for c, free in free_at.items() if free <= start)
        free_at[chair] = end
        chair_of[(rid, k)] = chair
    return [
        Booked(
            referral,
            [
                Visit.of(clinic, referral.protocol, chair_of[(referral.id, k)], _at(start))
                for k, (start, _) in enumerate(visits)
            ],
        )
        for referral, visits in timed
    ]


def optimum(
    clinic: Clinic, demand: list[Referral], hint: list[Booked], seconds: float, slack_days: int = 21
) -> OptimumResult:
    model = _Model(clinic, demand, slack_days)
    for referral in demand:
        model.add(referral)
    model.limits()
    model.hint(hint)
    model.model.Minimize(sum(model.cost))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 2
    solver.parameters.random_seed = 1
    status = solver.Solve(model.model)
    name = solver.StatusName(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return OptimumResult(
            [Booked(r, []) for r in demand],
            name,
            float("nan"),
            solver.BestObjectiveBound(),
            solver.WallTime(),
        )
    timed = []
    for referral in demand:
        if solver.Value(model.unbooked[referral.id]):
            timed.append((referral, []))
            continue
        minutes = clinic.protocol(referral.protocol).minutes
        starts = [solver.Value(v) for v in model.starts[referral.id]]
        timed.append((referral, [(s, s + minutes) for s in starts]))
    return OptimumResult(
        _assign_chairs(clinic, timed),
        name,
        solver.ObjectiveValue(),
        solver.BestObjectiveBound(),
        solver.WallTime(),
    )
