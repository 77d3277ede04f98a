"""The worker on SQLite and PostgreSQL: retries with backoff, gives up visibly, takes over a
job whose lease expired, and never completes a job it no longer owns."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from referral_service.adapters.db import outbox
from referral_service.adapters.db.tables import jobs
from referral_service.services.jobs import RetryLater
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral

HEADERS = {"Content-Type": FHIR_JSON}


@pytest.fixture
def flaky_evaluation(monkeypatch, runtime):
    """The EHR is down for every read the evaluation needs (the worker is what is tested)."""
    calls = []

    def unavailable(runtime, job):
        calls.append(job.attempts)
        raise RetryLater("EhrUnavailable")

    monkeypatch.setitem(
        runtime.job_handlers, "evaluate", lambda job, _finish: unavailable(runtime, job)
    )
    return calls


def _job(engine):
    with engine.connect() as conn:
        return conn.execute(select(jobs)).mappings().one()


def _task(client, referral_id):
    bundle = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    return bundle["entry"][0]["resource"]


def test_retries_with_backoff_then_gives_up_with_the_task_failed(
    client, runtime, engine, clock, flaky_evaluation
) -> None:
    runtime.settings = runtime.settings.__class__(
        **{**runtime.settings.__dict__, "job_max_attempts": 3, "job_backoff_base_seconds": 10}
    )
    referral_id = client.post(
        "/fhir/ServiceRequest", json=eligible_referral("flaky"), headers=HEADERS
    ).get_json()["id"]
    worker = Worker(runtime)
    assert worker.run_once() is True
    job = _job(engine)
    assert job["status"] == "pending" and job["attempts"] == 1
    assert job["run_after"] > clock.moment  # backoff: not due again at once
    assert worker.run_once() is False

    for _ in range(2):
        clock.moment = _job(engine)["run_after"] + timedelta(seconds=1)
        assert worker.run_once() is True
    assert flaky_evaluation == [1, 2, 3]
    assert _job(engine)["status"] == "failed"
    task = _task(client, referral_id)
    assert task["status"] == "failed"
    assert task["businessStatus"]["coding"][0]["code"] == "ehr-failed"
    history = client.get(f"/api/referrals/{referral_id}").get_json()["events"]
    assert [e["kind"] for e in history].count("job-attempt") == 3
    assert history[-1]["kind"] == "gave-up"


def test_a_job_whose_lease_expired_is_taken_over_once(client, runtime, engine, clock) -> None:
    referral_id = client.post(
        "/fhir/ServiceRequest", json=eligible_referral("lease"), headers=HEADERS
    ).get_json()["id"]
    with engine.begin() as conn:  # worker A claims the job, then "dies"
        claimed = outbox.claim(conn, worker_id="A", now=clock.moment, lease_seconds=60)
    assert claimed is not None
    assert Worker(runtime, "B").run_once() is False  # still leased to A

    clock.moment += timedelta(seconds=61)
    worker_b = Worker(runtime, "B")
    assert worker_b.run_until_idle() >= 2  # evaluate (taken over), then book
    with engine.begin() as conn:
        assert outbox.complete(conn, claimed, worker_id="A", now=clock.moment) is False
    assert _task(client, referral_id)["businessStatus"]["coding"][0]["code"] == "booked"
    with engine.connect() as conn:
        evaluate = conn.execute(select(jobs).where(jobs.c.kind == "evaluate")).mappings().one()
    assert evaluate["status"] == "done" and evaluate["attempts"] == 2


def test_an_unknown_job_kind_fails_visibly_not_silently(runtime, engine, clock) -> None:
    with engine.begin() as conn:
        outbox.enqueue(conn, "mystery", now=clock.moment, max_attempts=1)
    assert Worker(runtime).run_once() is True
    job = _job(engine)
    assert job["status"] == "failed" and "mystery" in job["last_error"]


def test_a_database_outage_pauses_the_worker_instead_of_ending_it(runtime, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    from referral_service import worker as worker_module

    worker = Worker(runtime)
    calls = []

    def database_down(look_first: bool = True) -> bool:
        calls.append(1)
        if len(calls) == 2:
            worker.stop()
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError())

    monkeypatch.setattr(worker, "run_once", database_down)
    monkeypatch.setattr(worker_module, "OUTAGE_PAUSE_SECONDS", 0.01)
    worker.run_forever()  # returns when stopped; the outage did not raise out of it
    assert len(calls) == 2


def test_a_job_queued_twice_under_one_dedupe_key_is_one_job_and_the_caller_goes_on(
    engine, clock
) -> None:
    with engine.begin() as conn:
        for _ in range(2):
            outbox.enqueue(
                conn, "evaluate", now=clock.moment, max_attempts=3, dedupe_key="same-work"
            )
        outbox.enqueue(conn, "evaluate", now=clock.moment, max_attempts=3, dedupe_key="other")
    with engine.begin() as conn:  # a later transaction, the key already taken
        outbox.enqueue(conn, "evaluate", now=clock.moment, max_attempts=3, dedupe_key="same-work")
    with engine.connect() as conn:
        keys = sorted(conn.execute(select(jobs.c.dedupe_key)).scalars())
    assert keys == ["other", "same-work"]


def test_each_job_records_the_cpu_time_its_thread_spent(client, runtime, monkeypatch) -> None:
    """referral_job_cpu_seconds{kind}: the service's own cost per job (bench/booking.py reads
    it); a job that only waits costs next to nothing, one that computes costs its CPU."""
    from prometheus_client import REGISTRY

    def cpu(kind: str) -> tuple[float, float]:
        labels = {"kind": kind}
        return (
            REGISTRY.get_sample_value("referral_job_cpu_seconds_count", labels) or 0.0,
            REGISTRY.get_sample_value("referral_job_cpu_seconds_sum", labels) or 0.0,
        )

    def evaluate_slowly(runtime, job):  # type: ignore[no-untyped-def]
        deadline = time.thread_time() + 0.05
        while time.thread_time() < deadline:  # 50 ms of CPU
            pass
        time.sleep(0.2)  # waiting costs no CPU
        return "eligible"

    monkeypatch.setitem(
        runtime.job_handlers, "evaluate", lambda job, _f: evaluate_slowly(runtime, job)
    )
    before = cpu("evaluate")
    client.post("/fhir/ServiceRequest", json=eligible_referral("cpu-time"), headers=HEADERS)
    assert Worker(runtime).run_once() is True
    count, seconds = (a - b for a, b in zip(cpu("evaluate"), before, strict=True))
    assert count == 1
    assert 0.05 <= seconds < 0.2
