"""The API wakes an idle worker after committing work (SQLite and PostgreSQL): a referral is
evaluated long before the worker's idle poll would have looked again."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from referral_service.adapters.db.tables import jobs
from referral_service.adapters.wakeup import WakeListener, free_udp_port
from referral_service.services.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral

HEADERS = {"Content-Type": FHIR_JSON}
LONG_POLL_SECONDS = 60.0  # far longer than the test waits: only a wake-up can explain a run


@pytest.fixture
def wake_address() -> tuple[str, int]:
    return ("127.0.0.1", free_udp_port())


@pytest.fixture
def settings(settings, wake_address):
    return replace(settings, worker_wake=wake_address, worker_poll_seconds=LONG_POLL_SECONDS)


@pytest.fixture(autouse=True)
def _close_the_api_side(runtime):
    yield
    if "wake_sender" in runtime.__dict__ and runtime.wake_sender is not None:
        runtime.wake_sender.close()


def test_an_accepted_referral_rings_and_a_refused_one_or_a_read_does_not(
    client, wake_address
) -> None:
    listener = WakeListener(wake_address)
    try:
        assert client.get("/fhir/metadata").status_code == 200
        bad = client.post("/fhir/ServiceRequest", data=b"{", headers=HEADERS)
        assert bad.status_code == 400
        assert listener.wait(0.05) is False
        created = client.post(
            "/fhir/ServiceRequest", json=eligible_referral("wake-1"), headers=HEADERS
        )
        assert created.status_code == 201
        assert listener.wait(5.0) is True
    finally:
        listener.close()


def test_an_idle_worker_takes_a_new_referral_at_once(client, runtime, engine) -> None:
    worker = Worker(runtime)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)  # the worker has found nothing and waits out its long poll
        created = client.post(
            "/fhir/ServiceRequest", json=eligible_referral("wake-2"), headers=HEADERS
        )
        assert created.status_code == 201
        deadline = time.monotonic() + 10
        evaluated = False
        while time.monotonic() < deadline and not evaluated:
            with engine.connect() as conn:
                kinds = conn.execute(select(jobs.c.kind, jobs.c.status)).all()
            evaluated = ("evaluate", "done") in kinds
            time.sleep(0.02)
        assert evaluated, kinds
    finally:
        worker.stop()
        thread.join(5)
    assert not thread.is_alive(), "stop() must interrupt the idle wait, not wait out the poll"
