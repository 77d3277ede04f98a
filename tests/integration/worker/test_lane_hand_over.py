"""An evaluation that queues a booking hands it to the EHR lane in process: the EHR lane
claims at once, with no wake-up from the database (SQLite has none; nor has PostgreSQL with
REFERRAL_WORKER_LISTEN=0) and no poll. A worker that dies between the two leaves the queued
booking for any worker, as any queued job."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from referral_service.adapters.db.tables import jobs
from referral_service.config import Settings
from referral_service.worker import Worker
from referral_service.worker_lanes import DECISIONS, EHR_WORK, WorkerLanes
from tests.support.referrals import FHIR_JSON, eligible_referral

LONG_POLL_SECONDS = 60.0  # only the hand-over can explain a prompt booking


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(
        settings, worker_wake=None, worker_listen=False, worker_poll_seconds=LONG_POLL_SECONDS
    )


def _jobs(engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        query = select(jobs.c.kind, jobs.c.status, jobs.c.attempts).order_by(jobs.c.id)
        return [tuple(row) for row in conn.execute(query)]


def _wait_for(engine, wanted, seconds: float = 10.0) -> list[tuple[str, str, int]]:
    deadline = time.monotonic() + seconds
    while (rows := _jobs(engine)) != wanted and time.monotonic() < deadline:
        time.sleep(0.02)
    return rows


def test_the_ehr_lane_takes_the_booking_at_once_and_runs_it_once(client, runtime, engine):
    lanes = WorkerLanes(runtime, (DECISIONS, EHR_WORK))
    thread = threading.Thread(target=lanes.run_forever, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # both lanes looked, found nothing, and wait out their long poll
        created = client.post(
            "/fhir/ServiceRequest", json=eligible_referral("hand-over"), headers=HEADERS
        )
        assert created.status_code == 201
        lanes.workers[0].nudge()  # the decisions lane's wake-up (a NOTIFY or UDP nudge)
        rows = _wait_for(engine, [("evaluate", "done", 1), ("book", "done", 1)])
        assert rows == [("evaluate", "done", 1), ("book", "done", 1)]
    finally:
        lanes.stop()
        thread.join(5)
    history = client.get(f"/api/referrals/{created.get_json()['id']}").get_json()["events"]
    assert [e["kind"] for e in history].count("booked") == 1


def test_a_booking_queued_by_a_worker_that_then_died_is_taken_by_any_worker(
    client, runtime, engine
):
    """No hand-over happens (the evaluating worker is gone): the booking waits in the outbox
    like any job and another worker runs it."""
    client.post("/fhir/ServiceRequest", json=eligible_referral("orphan"), headers=HEADERS)
    Worker(runtime, lane=DECISIONS).run_once()  # evaluates, queues the booking, then "dies"
    assert _jobs(engine) == [("evaluate", "done", 1), ("book", "pending", 0)]
    assert Worker(runtime, lane=EHR_WORK).run_until_idle() == 1
    assert _jobs(engine) == [("evaluate", "done", 1), ("book", "done", 1)]


HEADERS = {"Content-Type": FHIR_JSON}
