"""Three infusion schedulers on one seeded synthetic demand, measured against the optimum.

    .venv/bin/python bench/scheduling.py [--weeks 8] [--per-week 40] [--seed 17]
        [--protocols standard-infusion=0.55,dhe=0.25,eptinezumab=0.2]
        [--priorities routine=0.7,urgent=0.2,asap=0.07,stat=0.03]
        [--dhe-visits 3] [--nurses N] [--chairs N] [--clinic FILE] [--cp-seconds 60]
        [--reserve 1] [--out schedules.json]

Referrals arrive uniformly over the opening hours of `--weeks` weeks (the example clinic by
default) and are scheduled by:
- first-fit: today's slot choice (slots.local_candidates: earliest cell, then least-booked
  chair) for the first visit, then the first free cell from each later visit's due day;
- online: planner.plan_series as each referral arrives, knowing nothing of the future;
- optimum: OR-Tools CP-SAT over the whole demand (bench extra), started from the online
  schedule, with a time limit; its proven bound is printed beside its objective.
A referral with no room inside its window is booked at the first chance after it (counted as
outside its window). Every schedule is judged by the same independent rule checker (rules.py).
The online decision time is also measured on a 20-chair clinic (5x the demand, 5 nurses per band)
for routine 3-visit DHE series over a 14-day window (target p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scheduling_demand import Booked, Referral, demand, figures, shares, tailor  # noqa: E402
from referral_service.domain.scheduling import planner  # noqa: E402
from referral_service.domain.scheduling.clinic import Clinic, load_clinic  # noqa: E402
from referral_service.domain.scheduling.planner import (  # noqa: E402
    LOOK_BEYOND_DAYS,
    Plan,
    SeriesRequest,
    plan_series,
    series_days,
)
from referral_service.domain.scheduling.rules import Visit  # noqa: E402
from referral_service.domain.scheduling.slots import Interval, local_candidates  # noqa: E402
from referral_service.domain.scheduling.window import BookingWindow  # noqa: E402

FIRST_DAY = date(2026, 11, 30)  # a Monday; the 8 weeks cross the Christmas and New Year closures
DECISION_P99_TARGET_MS = 50.0


def _beyond(window: BookingWindow) -> BookingWindow:
    return BookingWindow(window.opens, window.closes + timedelta(days=LOOK_BEYOND_DAYS))


def first_fit(clinic: Clinic, referrals: list[Referral]) -> list[Booked]:
    busy: dict[str, list[Interval]] = {c.id: [] for c in clinic.chairs}
    out = []
    for referral in referrals:
        protocol = clinic.protocol(referral.protocol)
        visits: list[Visit] = []
        window = referral.window
        for attempt in (window, _beyond(window)):
            found = local_candidates(clinic, attempt, protocol.duration, busy)
            if found:
                visits.append(
                    Visit.of(clinic, referral.protocol, found[0].chair_id, found[0].start)
                )
                break
        if visits:
            first = visits[0].start.astimezone(clinic.zone).date()
            due = series_days(clinic, first, protocol) or []
            for day in due[1:]:
                opening = clinic.opening_on(day)
                assert opening is not None
                later = BookingWindow(opening[0], opening[0] + timedelta(days=LOOK_BEYOND_DAYS))
                found = local_candidates(clinic, later, protocol.duration, busy)
                if found:
                    visits.append(
                        Visit.of(clinic, referral.protocol, found[0].chair_id, found[0].start)
                    )
        for visit in visits:
            busy[visit.chair_id].append(Interval(visit.start, visit.end))
        out.append(Booked(referral, visits))
    return out


def online(clinic: Clinic, referrals: list[Referral]) -> tuple[list[Booked], list[float]]:
    """Each referral planned as it arrives; returns the schedule and each decision's seconds."""
    booked: list[Visit] = []
    out, took = [], []
    for referral in referrals:
        started = time.perf_counter()
        plan = None
        for window in (referral.window, _beyond(referral.window)):
            request = SeriesRequest(referral.protocol, referral.priority, window)
            result = plan_series(clinic, request, booked)
            if isinstance(result, Plan):
                plan = result
                break
        took.append(time.perf_counter() - started)
        visits = list(plan.visits) if plan else []
        booked.extend(visits)
        out.append(Booked(referral, visits))
    return out, took


def decision_times(clinic: Clinic, args: argparse.Namespace) -> list[float]:
    """Online decisions for routine DHE series on a 20-chair clinic with a loaded book."""
    big = tailor(clinic, chairs=20, nurses=5, dhe_visits=3)
    referrals = demand(
        big, FIRST_DAY, 3, args.per_week * 5, shares(args.protocols), {"routine": 1.0}, args.seed
    )
    schedule, took = online(big, referrals)
    return [t for b, t in zip(schedule, took, strict=True) if b.referral.protocol == "dhe"]


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(name: str, fig: dict[str, float], extra: str = "") -> str:
    return (
        f"{name:<10} {fig['in_window_pct']:>8.1f} {fig['mean_days_to_first']:>8.2f} "
        f"{fig['p90_days_to_first']:>6.0f} {fig['series_on_spacing_pct']:>8.1f} "
        f"{fig['nurse_violations']:>8.0f} {fig['chair_or_hours_violations']:>6.0f} "
        f"{fig['peak_overlapping_starts']:>6.0f} {fig['max_nurses_on_duty']:>6.0f} "
        f"{fig['chair_utilisation_pct']:>6.1f} {fig['unbooked']:>5.0f} {extra}"
    )


def verdicts(figs: dict[str, dict[str, float]], optimum_proven: bool = False) -> list[str]:
    """The issue's targets for the online scheduler, each with its figures and whether it is met.
    `optimum_proven`: CP-SAT proved its schedule optimal (else it is only the best it found)."""
    on, ff = figs["online"], figs["first-fit"]
    rules = on["nurse_violations"] + on["chair_or_hours_violations"]
    lines = [f"target: online hard-rule violations 0: {rules:.0f} ({_met(rules == 0)})"]
    starts_ok = on["peak_overlapping_starts"] <= on["max_nurses_on_duty"]
    lines.append(
        f"target: peak overlapping starts <= nurses on duty: {on['peak_overlapping_starts']:.0f}"
        f" <= {on['max_nurses_on_duty']:.0f} ({_met(starts_ok)})"
    )
    if "optimum" in figs:
        opt = figs["optimum"]
        gap = opt["in_window_pct"] - on["in_window_pct"]
        lines.append(
            f"target: in-window within 2 points of the optimum: {gap:+.1f} ({_met(gap <= 2)})"
        )
        ratio = on["mean_days_to_first"] / opt["mean_days_to_first"] - 1
        lines.append(
            f"target: mean days to first infusion within 15 % of the optimum: {100 * ratio:+.1f} %"
            f" ({_met(ratio <= 0.15)})"
        )
    opt = figs.get("optimum")
    behind: list[str] = []
    undecided: list[str] = []
    for key, higher in (
        ("in_window_pct", True),
        ("in_window_keeping_rules_pct", True),
        ("mean_days_to_first", False),
        ("series_on_spacing_pct", True),
        ("nurse_violations", False),
    ):
        better = on[key] >= ff[key] if higher else on[key] <= ff[key]
        verdict = "as good or better"
        # The issue asks the online scheduler to beat first-fit only where first-fit is not
        # already at the optimum; first-fit gets past the optimum by breaking nurse rules.
        past = opt is not None and (ff[key] >= opt[key] if higher else ff[key] <= opt[key])
        if better:
            pass
        elif past and optimum_proven:
            verdict = f"worse; first-fit is at or past the proven optimum ({opt[key]:.2f}): exempt"
        elif past:
            verdict = (
                f"worse; first-fit is at or past the best schedule CP-SAT found ({opt[key]:.2f}),"
                " not proven optimal: undecided"
            )
            undecided.append(key)
        else:
            verdict = "worse"
            behind.append(key)
        lines.append(f"versus first-fit, {key}: {on[key]:.2f} vs {ff[key]:.2f} ({verdict})")
    if opt is not None:
        lines.append(
            "target: better than first-fit wherever first-fit is not at the optimum: behind on "
            f"{', '.join(behind) or 'none'}; undecided on {', '.join(undecided) or 'none'} "
            f"({_met(not behind and not undecided)})"
        )
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _schedule_json(schedule: list[Booked]) -> list[dict[str, object]]:
    return [
        {
            "referral": b.referral.id,
            "received": b.referral.received.isoformat(),
            "priority": b.referral.priority,
            "protocol": b.referral.protocol,
            "window": [b.referral.window.opens.isoformat(), b.referral.window.closes.isoformat()],
            "visit": index,
            "chair": v.chair_id,
            "start": v.start.isoformat(),
            "end": v.end.isoformat(),
        }
        for b in schedule
        for index, v in enumerate(b.visits)
    ]


def _clinic_json(clinic: Clinic) -> dict[str, object]:
    data = asdict(clinic)
    return json.loads(json.dumps(data, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--per-week", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--protocols", default="standard-infusion=0.55,dhe=0.25,eptinezumab=0.2")
    parser.add_argument("--priorities", default="routine=0.7,urgent=0.2,asap=0.07,stat=0.03")
    parser.add_argument("--dhe-visits", type=int, default=None)
    parser.add_argument("--nurses", type=int, default=None, help="nurses in every band")
    parser.add_argument("--chairs", type=int, default=None)
    parser.add_argument("--clinic", default=None, help="clinic YAML (default: the example)")
    parser.add_argument("--cp-seconds", type=float, default=60.0)
    parser.add_argument("--no-optimum", action="store_true", help="skip CP-SAT")
    parser.add_argument(
        "--reserve",
        type=int,
        default=planner.RESERVE_VISITS,
        help="visits a routine referral leaves free on a day before a closed day (0: none)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    planner.RESERVE_VISITS = args.reserve

    clinic = tailor(load_clinic(args.clinic), args.chairs, args.nurses, args.dhe_visits)
    referrals = demand(
        clinic,
        FIRST_DAY,
        args.weeks,
        args.per_week,
        shares(args.protocols),
        shares(args.priorities),
        args.seed,
    )
    visits = sum(clinic.protocol(r.protocol).course.series.visits for r in referrals)
    print(
        f"{clinic.name}: {len(clinic.chairs)} chairs; {len(referrals)} referrals ({visits} visits)"
        f" over {args.weeks} weeks from {FIRST_DAY}, seed {args.seed}"
    )
    schedules: dict[str, list[Booked]] = {"first-fit": first_fit(clinic, referrals)}
    schedules["online"], took = online(clinic, referrals)
    notes = {"online": f"decision p50 {_ms(took, 0.5):.1f} ms, p99 {_ms(took, 0.99):.1f} ms"}
    if not args.no_optimum:
        from bench.scheduling_optimum import optimum

        result = optimum(clinic, referrals, schedules["online"], args.cp_seconds)
        schedules["optimum"] = result.schedule
        notes["optimum"] = (
            f"CP-SAT {result.status} in {result.seconds:.0f} s: objective "
            f"{result.objective:.0f}, proven bound {result.bound:.0f}"
        )
    print(
        f"{'scheduler':<10} {'inwin%':>8} {'meandays':>8} {'p90d':>6} {'series%':>8} "
        f"{'nurseviol':>8} {'other':>6} {'peakst':>6} {'nurses':>6} {'chair%':>6} {'unbkd':>5}"
    )
    figs = {}
    for name, schedule in schedules.items():
        figs[name] = figures(clinic, schedule, FIRST_DAY, args.weeks)
        print(_row(name, figs[name]))
    for name, note in notes.items():
        print(f"  {name}: {note}")
    proven = not args.no_optimum and result.status == "OPTIMAL"
    for line in verdicts(figs, optimum_proven=proven):
        print(line)
    dhe = decision_times(clinic, args)
    verdict = "met" if _ms(dhe, 0.99) < DECISION_P99_TARGET_MS else "NOT met"
    print(
        f"  online, 20 chairs, routine 3-visit DHE over 14 days ({len(dhe)} decisions): "
        f"p50 {_ms(dhe, 0.5):.1f} ms, p99 {_ms(dhe, 0.99):.1f} ms "
        f"(target < {DECISION_P99_TARGET_MS:.0f} ms: {verdict})"
    )
    if args.out:
        payload = {
            "clinic": _clinic_json(clinic),
            "figures": figs,
            "schedules": {name: _schedule_json(s) for name, s in schedules.items()},
        }
        args.out.write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
