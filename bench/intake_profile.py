"""Where one accepted referral's time goes: the service in-process on PostgreSQL (no gunicorn,
no network), N referrals under cProfile, plus the SQL statements and commits per referral.

    .venv/bin/python bench/intake_profile.py [--referrals 300] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import database, dumps  # noqa: E402
from bench.load import MARKER  # noqa: E402
from tests.support.referrals import eligible_referral  # noqa: E402


def profile(referrals: int, top: int) -> str:
    from sqlalchemy import event

    from referral_service.api.app import create_app
    from referral_service.config import Settings
    from referral_service.runtime import Runtime

    template = dumps(eligible_referral(MARKER.decode()))
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        settings = Settings.from_env(
            {"REFERRAL_DATABASE_URL": url, "REFERRAL_RATE_LIMIT": "10000000/minute"}
        )
        runtime = Runtime(settings)
        app = create_app(runtime=runtime)
        client = app.test_client()
        statements: list[str] = []
        event.listen(
            runtime.engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0])
        )
        commits: list[int] = []
        event.listen(runtime.engine, "commit", lambda *a: commits.append(1))

        def post(i: int) -> None:
            body = template.replace(MARKER, f"profile-{i}".encode())
            response = client.post(
                "/fhir/ServiceRequest", data=body, headers={"Content-Type": "application/fhir+json"}
            )
            assert response.status_code == 201, response.get_data(as_text=True)

        for i in range(20):  # warm-up: imports, pool, caches
            post(-1 - i)
        statements.clear()
        commits.clear()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for i in range(referrals):
            post(i)
        profiler.disable()
        elapsed = time.perf_counter() - started
        runtime.engine.dispose()
    print(
        f"{referrals} referrals in {elapsed:.2f} s under cProfile = "
        f"{elapsed / referrals * 1000:.2f}"
        f" ms each; {len(statements) / referrals:.1f} SQL statements and "
        f"{len(commits) / referrals:.1f} commits per referral",
        file=out,
    )
    kinds: dict[str, int] = {}
    for kind in statements:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        "statements: " + ", ".join(f"{k} {v / referrals:.1f}" for k, v in kinds.items()), file=out
    )
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--referrals", type=int, default=300)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    print(profile(args.referrals, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
