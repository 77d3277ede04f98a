"""Scale-out on the machine's PostgreSQL: two `serve --no-worker` APIs and three `worker`
processes share one database. 300 referrals over both APIs: every referral reaches a final
state exactly once, no chair is ever double-booked, and /metrics adds up across processes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import requests
from sqlalchemy import func, select

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.tables import appointments, referral_events, tasks
from referral_service.domain.lifecycle import FINAL_BUSINESS_STATUSES
from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.service import EXECUTABLE, serve, stop

REFERRALS = 300


def _metric(text: str, name: str) -> float:
    return sum(
        float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
    )


def _wait_until_final(engine, timeout: float = 240) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            statuses = list(conn.execute(select(tasks.c.business_status)).scalars())
        if len(statuses) == REFERRALS and all(s in FINAL_BUSINESS_STATUSES for s in statuses):
            return statuses
        time.sleep(1)
    raise AssertionError(f"not all final: {sorted(set(statuses))}")


def test_two_apis_and_three_workers_share_one_postgresql(fresh_postgres_url, tmp_path) -> None:
    engine = make_engine(fresh_postgres_url)
    migrate.upgrade(engine)
    metrics_dir = tmp_path / "metrics"
    env = {
        "REFERRAL_DATABASE_URL": fresh_postgres_url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "REFERRAL_LOG_LEVEL": "WARNING",
    }
    with ExitStack() as stack:
        apis = [stack.enter_context(serve(tmp_path, env, "--no-worker")) for _ in range(2)]
        workers = [
            subprocess.Popen(
                [EXECUTABLE, "worker"],
                env={**os.environ, **env},
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(3)
        ]
        try:

            def post(n: int) -> int:
                api = apis[n % 2].base_url
                return requests.post(
                    f"{api}/fhir/ServiceRequest",
                    json=eligible_referral(f"scale-{n}"),
                    headers={"Content-Type": FHIR_JSON},
                    timeout=60,
                ).status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                assert set(pool.map(post, range(REFERRALS))) == {201}
            statuses = _wait_until_final(engine)
            scraped = [requests.get(f"{api.base_url}/metrics", timeout=10).text for api in apis]
        finally:
            for worker in workers:
                stop(worker)

    assert set(statuses) <= {"booked", "no-slot"}
    with engine.connect() as conn:
        evaluated = conn.execute(
            select(referral_events.c.referral_id, func.count())
            .where(referral_events.c.kind.in_(("booked", "no-slot")))
            .group_by(referral_events.c.referral_id)
        ).all()
        booked = (
            conn.execute(select(appointments).where(appointments.c.status == "booked"))
            .mappings()
            .all()
        )
    engine.dispose()
    assert len(evaluated) == REFERRALS and {count for _, count in evaluated} == {1}
    assert len(booked) == statuses.count("booked") > 0
    by_chair: dict[str, list] = {}
    for row in booked:
        by_chair.setdefault(row["chair_id"], []).append((row["start"], row["end"]))
    for intervals in by_chair.values():
        intervals.sort()
        assert all(
            a_end <= b_start
            for (_, a_end), (b_start, _) in zip(intervals, intervals[1:], strict=False)
        )
    # One shared multiprocess directory: any API's /metrics shows every process's counts.
    for text in scraped:
        assert _metric(text, "referral_received_total") == REFERRALS
        assert _metric(text, "referral_decisions_total") == REFERRALS
        assert _metric(text, "referral_bookings_total") == REFERRALS
