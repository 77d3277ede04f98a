"""How fast POST /webhooks/fhir answers 202 over real HTTP (gunicorn, SQLite or PostgreSQL).

    .venv/bin/python -m tests.integration.webhooks.measure_webhook_latency [N]

Starts `referral-service serve --no-worker` on a free port (REFERRAL_DATABASE_URL from the
environment, else a temp SQLite file), sends N distinct id-only notifications one by one, then
the same notification 10 times at once, and prints one JSON line of figures.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.integration.webhooks.conftest import AUTH, SECRET, notification
from tests.support.service import free_port

CLI = str(Path(sys.executable).with_name("referral-service"))


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "REFERRAL_DATABASE_URL": os.environ.get(
            "REFERRAL_DATABASE_URL", f"sqlite:///{workdir / 'latency.db'}"
        ),
        "REFERRAL_WEBHOOK_SECRET": SECRET,
        "REFERRAL_LOG_LEVEL": "WARNING",
    }
    args = [CLI, "serve", "--port", str(port), "--workers", "2", "--no-worker"]
    quiet = subprocess.DEVNULL
    process = subprocess.Popen(args, env=env, cwd=workdir, stdout=quiet, stderr=quiet)
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if requests.get(f"{base}/healthz", timeout=1).ok:
                return process, base
        except requests.RequestException:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the service did not start")


def _post(session: requests.Session, url: str, body: dict) -> tuple[int, float]:
    started = time.perf_counter()
    response = session.post(url, data=json.dumps(body), headers=AUTH, timeout=10)
    return response.status_code, (time.perf_counter() - started) * 1000


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        process, base = _start(Path(workdir))
        try:
            url, session = f"{base}/webhooks/fhir", requests.Session()
            timings = []
            for number in range(1, count + 1):
                body = notification(number=number, focus=f"ServiceRequest/order-{number}")
                status, elapsed = _post(session, url, body)
                assert status == 202, status
                timings.append(elapsed)
            duplicate = notification(number=count + 1, focus="ServiceRequest/order-dup")
            with ThreadPoolExecutor(10) as pool:
                burst = list(
                    pool.map(lambda _: _post(requests.Session(), url, duplicate), range(10))
                )
        finally:
            process.terminate()
            process.wait(20)
    timings.sort()
    print(
        json.dumps(
            {
                "notifications": count,
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
                "max_ms": round(timings[-1], 1),
                "duplicate_burst_statuses": sorted({status for status, _ in burst}),
                "duplicate_burst_max_ms": round(max(elapsed for _, elapsed in burst), 1),
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
