"""Milliseconds per hostile request vs a normal referral, in process (Flask test client, SQLite).

Each hostile body (tests/security/hostile.py: deep nesting, huge strings/arrays/objects, a
10,000-entry Bundle, a body over the size limit) must be refused with 413 within
TARGET_MS; the normal referral's time is printed beside them for scale.
Run: .venv/bin/python -m bench.hostile_input [repeats]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from referral_service.api.app import create_app  # noqa: E402
from referral_service.config import Settings  # noqa: E402
from referral_service.runtime import Runtime  # noqa: E402
from tests.security.hostile import hostile_bodies  # noqa: E402
from tests.support.referrals import eligible_referral  # noqa: E402

TARGET_MS = 250.0
HEADERS = {"Content-Type": "application/fhir+json"}


def _timed(client: Any, body: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.post("/fhir/ServiceRequest", data=body, headers=HEADERS)
    return (time.perf_counter() - started) * 1000, response.status_code


def _median(client: Any, bodies: list[bytes]) -> tuple[float, set[int]]:
    results = [_timed(client, body) for body in bodies]
    return statistics.median(ms for ms, _ in results), {status for _, status in results}


def run(repeats: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(
            database_url=f"sqlite:///{workdir}/bench.db", rate_limit="1000000/minute"
        )
        client = create_app(runtime=Runtime(settings)).test_client()
        normal = [
            json.dumps(eligible_referral(uuid.uuid4().hex)).encode() for _ in range(4 * repeats)
        ]
        normal_ms, normal_statuses = _median(client, normal)
        print(
            f"{'normal referral (201)':32} {normal_ms:8.1f} ms  statuses {sorted(normal_statuses)}"
        )
        worst, refused = 0.0, True
        for name, body in hostile_bodies().items():
            ms, statuses = _median(client, [body] * repeats)
            worst, refused = max(worst, ms), refused and statuses == {413}
            print(f"{name:32} {ms:8.1f} ms  statuses {sorted(statuses)}  ({len(body):,} bytes)")
    met = refused and worst < TARGET_MS
    verdict = "met" if met else "NOT met"
    print(
        f"hostile worst {worst:.1f} ms vs normal {normal_ms:.1f} ms; "
        f"target: all 413 in < {TARGET_MS:.0f} ms: {verdict}"
    )
    return {
        "worst_hostile_ms": round(worst, 1),
        "normal_ms": round(normal_ms, 1),
        "all_413": refused,
        "target": f"every hostile body 413 in < {TARGET_MS:.0f} ms",
        "met": met,
    }


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    sys.exit(0 if result["met"] else 1)
