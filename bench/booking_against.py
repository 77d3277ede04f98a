"""bench/booking.py for this tree beside a reference build, alternating, in one run.

    .venv/bin/python bench/booking_against.py [--reference dbf6a7d] [--rounds 3] [--referrals 80]

The booking target ("the service adds < 50 ms p95 over the EHR's own time", issues 4 and 17) is
an absolute figure, and this project's machines differ by more than 2x between sessions. Here
it is read as a same-run ratio: the reference build runs its own bench/booking.py, then this
tree runs its own, in turn (ABBA order, so a drift in the machine's load falls on both), on the
same machine, each against a fresh SEKMET and a fresh PostgreSQL schema.

The default reference, dbf6a7d, is the build that met the absolute target: its README records
added p95 41.0, 48.2 and 46.4 ms (PostgreSQL, three runs of 200 referrals) on the machine of
that session. This tree meets the target when its added p95 is no more than the reference's in
the same run (ratio <= 1.00), taken as the median of the rounds' ratios.

The reference's tree is taken with `git archive` into a temporary directory and run on this
tree's virtual environment (PYTHONPATH puts its package first): its pins are a subset of this
tree's, at the same versions. Each bench prints its own table; this script prints the rounds.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "dbf6a7d"
_ADDED = re.compile(r"^added by the service \(server e2e - EHR\)\s+([\d.]+)\s+([\d.]+)", re.M)
# Per booked visit where the bench prints it (it leaves out bookings the periodic EHR hold sweep
# overlapped); the reference's bench prints only the mean per booking.
_REQUESTS = re.compile(r"^EHR requests per booked visit: ([\d.]+)", re.M)
_REQUESTS_OLD = re.compile(r"^EHR requests per booking: ([\d.]+)", re.M)


def unpack(revision: str, into: Path) -> Path:
    """The reference's files at `revision`, from this repository's history."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def bench(tree: Path, referrals: int, options: tuple[str, ...] = ()) -> dict[str, float]:
    """One run of `tree`'s bench/booking.py (`options` passed on: both builds' benches take
    --chairs, --days, --probes); its added p50/p95 and EHR requests per booked visit (per
    booking for a bench that does not print that)."""
    command = [sys.executable, str(tree / "bench" / "booking.py"), "--referrals", str(referrals)]
    done = subprocess.run(
        [*command, *options],
        cwd=tree,
        env={**_environment(), "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    added = _ADDED.search(done.stdout)
    requests = _REQUESTS.search(done.stdout) or _REQUESTS_OLD.search(done.stdout)
    if done.returncode != 0 or added is None or requests is None:
        raise RuntimeError(f"{tree} bench failed ({done.returncode}): {done.stderr[-2000:]}")
    return {
        "p50": float(added.group(1)),
        "p95": float(added.group(2)),
        "requests": float(requests.group(1)),
    }


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(reference: str, rounds: int, referrals: int, options: tuple[str, ...] = ()) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-reference-") as scratch:
        trees = {"reference": unpack(reference, Path(scratch)), "this tree": ROOT}
        rows: list[dict] = []
        for index in range(rounds):
            order = ["reference", "this tree"]
            if index % 2:
                order.reverse()  # ABBA: neither build always runs on the warmer machine
            figures = {name: bench(trees[name], referrals, options) for name in order}
            ratio = figures["this tree"]["p95"] / figures["reference"]["p95"]
            rows.append({"round": index + 1, "order": order, **figures, "ratio": ratio})
            print(_row(rows[-1]), flush=True)
    ratio = statistics.median(row["ratio"] for row in rows)
    return {"reference": reference, "rounds": rows, "ratio": ratio, "met": ratio <= 1.0}


def _row(row: dict) -> str:
    ref, ours = row["reference"], row["this tree"]
    return (
        f"round {row['round']} ({' then '.join(row['order'])}): added p50/p95 ms "
        f"reference {ref['p50']:.1f} / {ref['p95']:.1f} ({ref['requests']:.1f} EHR req.), "
        f"this tree {ours['p50']:.1f} / {ours['p95']:.1f} ({ours['requests']:.1f} EHR req.); "
        f"p95 ratio {row['ratio']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", default=REFERENCE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--referrals", type=int, default=80)
    args = parser.parse_args()
    result = run(args.reference, args.rounds, args.referrals)
    verdict = "meets" if result["met"] else "MISSES"
    print(
        f"added p95, this tree / reference {result['reference']} (same run, median of "
        f"{len(result['rounds'])} rounds): {result['ratio']:.2f} ({verdict} the <= 1.00 reading "
        "of the < 50 ms target, which the reference met on its own machine)"
    )


if __name__ == "__main__":
    main()
