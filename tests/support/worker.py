"""Running the real background worker in a thread, for integration tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from referral_service.adapters.db.tables import jobs
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral


@contextlib.contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """The worker's loop in a thread; on exit stop() must end it promptly, idle wait included."""
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(5)
    assert not thread.is_alive(), "stop() must interrupt the worker's idle wait"


def assert_idle_worker_takes_a_new_referral(
    client: Any, runtime: Any, engine: Any, identifier: str
) -> None:
    """A worker waiting out a long idle poll evaluates a referral POSTed now within seconds:
    only a wake-up can explain that."""
    with running(Worker(runtime)):
        time.sleep(0.3)  # the worker has found nothing and waits out its long poll
        created = client.post(
            "/fhir/ServiceRequest",
            json=eligible_referral(identifier),
            headers={"Content-Type": FHIR_JSON},
        )
        assert created.status_code == 201
        deadline = time.monotonic() + 10
        kinds: list[tuple[str, str]] = []
        while time.monotonic() < deadline and ("evaluate", "done") not in kinds:
            with engine.connect() as conn:
                kinds = [(k, s) for k, s in conn.execute(select(jobs.c.kind, jobs.c.status))]
            time.sleep(0.02)
        assert ("evaluate", "done") in kinds, kinds
