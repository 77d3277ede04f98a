"""Intake throughput: the real service on PostgreSQL under gunicorn vs a bare Flask app that only
parses JSON, same gunicorn settings, same load generator, same run.

    .venv/bin/python bench/intake.py [--seconds 10] [--clients 4] [--workers 2]

Target (issue 2): intake >= 50% of the bare app's throughput.

A third app, bench/floor_app.py, measures in the same run the floor any conforming intake has:
fhir.resources validation plus one durable INSERT. Its ratio to the bare app is the most an
implementation of issue 2 could reach on this machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ and tests/ live beside it
    sys.path.insert(0, str(ROOT))

from bench.common import database, drive, dumps, gunicorn  # noqa: E402
from bench.floor_app import TABLE_DDL  # noqa: E402
from tests.support.referrals import eligible_referral  # noqa: E402


def _bodies(clients: int, per_client: int) -> list[list[bytes]]:
    return [
        [dumps(eligible_referral(uuid.uuid4().hex)) for _ in range(per_client)]
        for _ in range(clients)
    ]


def run(seconds: float, clients: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as workdir, database("postgresql", Path(workdir)) as url:
        # The per-client rate limit would throttle the load generator, not measure intake.
        env = {
            "REFERRAL_DATABASE_URL": url,
            "REFERRAL_LOG_LEVEL": "WARNING",
            "REFERRAL_RATE_LIMIT": "10000000/minute",
        }
        per_client = int(seconds * 2000)
        with gunicorn("referral_service.wsgi:app", env, workers) as base:
            drive(base, "/fhir/ServiceRequest", _bodies(clients, 20), 2)  # warm-up
            service = drive(base, "/fhir/ServiceRequest", _bodies(clients, per_client), seconds)
        with gunicorn("bench.bare_app:app", env, workers) as base:
            drive(base, "/fhir/ServiceRequest", _bodies(clients, 20), 2)
            bare = drive(base, "/fhir/ServiceRequest", _bodies(clients, per_client), seconds)
        _create_floor_table(url)
        with gunicorn("bench.floor_app:app", env, workers) as base:
            drive(base, "/fhir/ServiceRequest", _bodies(clients, 20), 2)
            floor = drive(base, "/fhir/ServiceRequest", _bodies(clients, per_client), seconds)
    return {
        "service": service,
        "bare": bare,
        "floor": floor,
        "ratio": service["throughput"] / bare["throughput"],
        "floor_ratio": floor["throughput"] / bare["throughput"],
    }


def _create_floor_table(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(TABLE_DDL))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = run(args.seconds, args.clients, args.workers)
    for name in ("service", "bare", "floor"):
        r = result[name]
        print(
            f"{name:8} {r['throughput']:8.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  ({r['requests']} requests)"
        )
    verdict = "meets" if result["ratio"] >= 0.5 else "MISSES"
    print(f"ratio    {result['ratio']:.2f} of the bare app ({verdict} the >= 0.50 target)")
    print(
        f"floor    {result['floor_ratio']:.2f} of the bare app: fhir.resources validation + one "
        f"durable INSERT alone (the most any conforming intake could reach here)"
    )


if __name__ == "__main__":
    main()
