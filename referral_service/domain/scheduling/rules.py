"""Infusion visits and the hard rules a chair day must obey, checked over continuous time (pure).

This checker is written independently of the planner's tick grid on purpose: the planner's tests
and bench/scheduling.py judge its plans with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .clinic import Clinic


@dataclass(frozen=True, order=True)
class Visit:
    """One infusion in one chair; the first and last nurse minutes need a nurse's hands."""

    start: datetime
    end: datetime
    chair_id: str
    nurse_start_minutes: int = 0
    nurse_end_minutes: int = 0

    @classmethod
    def of(cls, clinic: Clinic, protocol: str, chair_id: str, start: datetime) -> Visit:
        spec = clinic.protocol(protocol)
        course = spec.course
        return cls(
            start,
            start + spec.duration,
            chair_id,
            course.nurse_start_minutes,
            course.nurse_end_minutes,
        )

    def nurse_phases(self) -> list[tuple[datetime, datetime]]:
        """The hands-on stretches: IV access and first observations, then removal and discharge."""
        phases = []
        if self.nurse_start_minutes:
            phases.append((self.start, self.start + timedelta(minutes=self.nurse_start_minutes)))
        if self.nurse_end_minutes:
            phases.append((self.end - timedelta(minutes=self.nurse_end_minutes), self.end))
        return phases


@dataclass(frozen=True)
class Violation:
    rule: str  # "chair", "hours", "nurse ratio", "nurse phases"
    at: datetime
    detail: str


def _segments(
    intervals: Sequence[tuple[datetime, datetime]], cuts: Iterable[datetime]
) -> list[tuple[datetime, int]]:
    """(segment start, how many intervals cover it) for each stretch between event times."""
    points = sorted({t for iv in intervals for t in iv} | set(cuts))
    out = []
    for left, right in zip(points, points[1:], strict=False):
        covering = sum(1 for s, e in intervals if s < right and left < e)
        out.append((left, covering))
    return out


def _band_cuts(clinic: Clinic, day: date) -> list[datetime]:
    if clinic.staffing is None:
        return []
    cuts = []
    for band in clinic.staffing.bands.get(day.weekday(), ()):
        for clock in (band.starts, band.ends):
            cuts.append(datetime.combine(day, clock, tzinfo=clinic.zone))
    return cuts


def nurses_on_duty(clinic: Clinic, at: datetime) -> int | None:
    """Nurses on duty at an instant (None when the clinic does not model nurses)."""
    if clinic.staffing is None:
        return None
    local = at.astimezone(clinic.zone)
    return clinic.staffing.nurses_at(local.weekday(), local.time())


def _chair_clashes(visits: Sequence[Visit]) -> list[Violation]:
    out = []
    by_chair: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_chair[visit.chair_id].append(visit)
    for chair, seq in by_chair.items():
        seq.sort()
        for a, b in zip(seq, seq[1:], strict=False):
            if b.start < a.end:
                out.append(Violation("chair", b.start, f"{chair} double-booked"))
    return out


def _outside_hours(clinic: Clinic, visits: Sequence[Visit]) -> list[Violation]:
    out = []
    for visit in visits:
        opening = clinic.opening_on(visit.start.astimezone(clinic.zone).date())
        if opening is None or not (opening[0] <= visit.start and visit.end <= opening[1]):
            out.append(Violation("hours", visit.start, "visit outside opening hours"))
    return out


def _nurse_limits(clinic: Clinic, day: date, visits: Sequence[Visit]) -> list[Violation]:
    staffing = clinic.staffing
    assert staffing is not None
    cuts = _band_cuts(clinic, day)
    out = []
    census = [(v.start, v.end) for v in visits]
    for at, patients in _segments(census, cuts):
        nurses = nurses_on_duty(clinic, at) or 0
        if patients > nurses * staffing.patients_per_nurse:
            detail = f"{patients} patients for {nurses} nurse(s)"
            out.append(Violation("nurse ratio", at, detail))
    phases = [phase for v in visits for phase in v.nurse_phases()]
    for at, hands_on in _segments(phases, cuts):
        nurses = nurses_on_duty(clinic, at) or 0
        if hands_on > nurses:
            detail = f"{hands_on} starts/ends at once for {nurses} nurse(s)"
            out.append(Violation("nurse phases", at, detail))
    return out


def hard_rule_violations(clinic: Clinic, visits: Iterable[Visit]) -> list[Violation]:
    """Every breach of: one patient per chair, open hours, nurses x ratio, one phase per nurse."""
    seq = list(visits)
    out = _chair_clashes(seq) + _outside_hours(clinic, seq)
    if clinic.staffing is not None:
        by_day: dict[date, list[Visit]] = defaultdict(list)
        for visit in seq:
            by_day[visit.start.astimezone(clinic.zone).date()].append(visit)
        for day, day_visits in sorted(by_day.items()):
            out.extend(_nurse_limits(clinic, day, day_visits))
    return out


def peak_overlapping_starts(visits: Iterable[Visit]) -> int:
    """The most start phases (IV access, first observations) running at one instant."""
    starts = [v.nurse_phases()[0] for v in visits if v.nurse_start_minutes]
    events = sorted([(s, 1) for s, _ in starts] + [(e, -1) for _, e in starts])
    peak = running = 0
    for _, step in events:  # an end sorts before a start at the same instant (-1 < 1)
        running += step
        peak = max(peak, running)
    return peak
