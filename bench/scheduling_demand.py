"""Seeded synthetic infusion demand for bench/scheduling.py, and the figures a schedule earns."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from referral_service.domain.scheduling.clinic import Chair, Clinic
from referral_service.domain.scheduling.nursing import NurseBand, Series
from referral_service.domain.scheduling.planner import series_days
from referral_service.domain.scheduling.rules import (
    Violation,
    Visit,
    hard_rule_violations,
    nurses_on_duty,
    peak_overlapping_starts,
)
from referral_service.domain.scheduling.window import BookingWindow, booking_window


@dataclass(frozen=True)
class Referral:
    id: str
    received: datetime
    priority: str
    protocol: str
    window: BookingWindow


@dataclass
class Booked:
    """One scheduler's answer for one referral: its visits (none when it could not book)."""

    referral: Referral
    visits: list[Visit]


def shares(text: str) -> dict[str, float]:
    """ "a=0.5,b=0.5" -> {"a": 0.5, "b": 0.5}"""
    pairs = (item.split("=") for item in text.split(",") if item)
    return {name.strip(): float(weight) for name, weight in pairs}


def tailor(
    clinic: Clinic, chairs: int | None, nurses: int | None, dhe_visits: int | None
) -> Clinic:
    """The clinic with the chair count, nurses per band and DHE series length overridden."""
    if chairs is not None:
        clinic = replace(
            clinic, chairs=tuple(Chair(f"chair-{i}", f"Chair {i}") for i in range(1, chairs + 1))
        )
    if nurses is not None and clinic.staffing is not None:
        bands = {
            day: tuple(NurseBand(b.starts, b.ends, nurses) for b in seq)
            for day, seq in clinic.staffing.bands.items()
        }
        clinic = replace(clinic, staffing=replace(clinic.staffing, bands=bands))
    if dhe_visits is not None and "dhe" in clinic.protocols:
        dhe = clinic.protocols["dhe"]
        series = Series(dhe_visits, dhe.course.series.spacing, dhe.course.series.every_days)
        course = replace(dhe.course, series=series)
        clinic = replace(clinic, protocols={**clinic.protocols, "dhe": replace(dhe, course=course)})
    return clinic


def open_days(clinic: Clinic, first: date, weeks: int) -> list[date]:
    days = (first + timedelta(n) for n in range(7 * weeks))
    return [day for day in days if clinic.opening_on(day) is not None]


def demand(
    clinic: Clinic,
    first: date,
    weeks: int,
    per_week: float,
    protocols: dict[str, float],
    priorities: dict[str, float],
    seed: int,
) -> list[Referral]:
    """Referrals arriving uniformly over the opening hours of `weeks` weeks, in arrival order."""
    rng = random.Random(seed)
    days = open_days(clinic, first, weeks)
    minutes = {day: _open_minutes(clinic, day) for day in days}
    count = round(per_week * weeks)
    arrivals = []
    for _ in range(count):
        day = rng.choices(days, weights=[minutes[d] for d in days])[0]
        opens, _ = clinic.opening_on(day) or (None, None)
        assert opens is not None
        arrivals.append(opens + timedelta(minutes=rng.uniform(0, minutes[day])))
    arrivals.sort()
    out = []
    for index, received in enumerate(arrivals):
        priority = rng.choices(list(priorities), weights=list(priorities.values()))[0]
        protocol = rng.choices(list(protocols), weights=list(protocols.values()))[0]
        window = booking_window(priority, received, received, None, clinic)
        out.append(Referral(f"r{index:04d}", received, priority, protocol, window))
    return out


def _open_minutes(clinic: Clinic, day: date) -> float:
    opening = clinic.opening_on(day)
    return 0.0 if opening is None else (opening[1] - opening[0]).total_seconds() / 60


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _local_day(clinic: Clinic, at: datetime) -> date:
    return at.astimezone(clinic.zone).date()


def on_spacing(clinic: Clinic, booked: Booked) -> bool:
    protocol = clinic.protocol(booked.referral.protocol)
    if len(booked.visits) != protocol.course.series.visits:
        return False
    days = [_local_day(clinic, v.start) for v in booked.visits]
    return days == series_days(clinic, days[0], protocol)


def _breaks(visit: Visit, broken: list[Violation]) -> bool:
    """The visit takes part in a breach: one of its nurse phases at a nurse-phase breach, its
    chair time at any other (the checker reports each breach's first instant)."""
    for violation in broken:
        if violation.rule == "nurse phases":
            spans = visit.nurse_phases()
        else:
            spans = [(visit.start, visit.end)]
        if any(s <= violation.at < e for s, e in spans):
            return True
    return False


def figures(clinic: Clinic, schedule: list[Booked], first: date, weeks: int) -> dict[str, float]:
    """The issue's measures for one scheduler's whole schedule."""
    visits = [v for b in schedule for v in b.visits]
    booked = [b for b in schedule if b.visits]
    in_window = [b for b in booked if b.referral.window.holds(b.visits[0].start, b.visits[0].end)]
    days_to_first = [
        (_local_day(clinic, b.visits[0].start) - _local_day(clinic, b.referral.received)).days
        for b in booked
    ]
    series = [b for b in schedule if clinic.protocol(b.referral.protocol).course.series.visits > 1]
    violations: dict[str, int] = defaultdict(int)
    broken = hard_rule_violations(clinic, visits)
    for violation in broken:
        violations[violation.rule] += 1
    keeping = [b for b in in_window if not any(_breaks(v, broken) for v in b.visits)]
    period = open_days(clinic, first, weeks)
    chair_minutes = sum(_open_minutes(clinic, d) for d in period) * len(clinic.chairs)
    used = sum(
        (v.end - v.start).total_seconds() / 60
        for v in visits
        if _local_day(clinic, v.start) in set(period)
    )
    return {
        "referrals": len(schedule),
        "unbooked": len(schedule) - len(booked),
        "in_window_pct": 100 * len(in_window) / len(schedule),
        "in_window_keeping_rules_pct": 100 * len(keeping) / len(schedule),
        "mean_days_to_first": statistics.fmean(days_to_first) if days_to_first else float("nan"),
        "p90_days_to_first": _pct([float(d) for d in days_to_first], 0.9),
        "series_on_spacing_pct": (
            100 * sum(on_spacing(clinic, b) for b in series) / len(series) if series else 100.0
        ),
        "nurse_violations": violations["nurse ratio"] + violations["nurse phases"],
        "chair_or_hours_violations": violations["chair"] + violations["hours"],
        "peak_overlapping_starts": peak_overlapping_starts(visits),
        "max_nurses_on_duty": max(
            (nurses_on_duty(clinic, v.start) or 0 for v in visits), default=0
        ),
        "chair_utilisation_pct": 100 * used / chair_minutes if chair_minutes else 0.0,
    }
