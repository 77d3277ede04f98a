"""Leases that hold and failures that cannot be retried (issue 18), on SQLite and PostgreSQL:
a running job renews its lease; a job whose lease was taken over cannot commit; attempts never
exceed the maximum; a poisoned webhook job is dead-lettered on its first failure."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from referral_service.adapters.db import outbox
from referral_service.adapters.db.tables import jobs
from referral_service.observability import metrics
from referral_service.services.ehr import webhooks
from referral_service.services.jobs import JobKind, RetryLater
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral, service_request

SLOW = "test-slow-job"


def _with(runtime: Any, **changes: Any) -> None:
    runtime.settings = dataclasses.replace(runtime.settings, **changes)


def _job(engine: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(jobs)).mappings().one()


def _state(runtime: Any, key: str) -> Any:
    with runtime.unit_of_work(read_only=True) as uow:
        return uow.state.read(key)


def _enqueue(runtime: Any, kind: str = SLOW, **payload: Any) -> None:
    with runtime.engine.begin() as conn:
        outbox.enqueue(
            conn,
            kind,
            now=runtime.now(),
            max_attempts=runtime.settings.job_max_attempts,
            payload=payload,
        )


class BlockingJob:
    """A job kind whose first run waits inside the job until released, then writes its outcome
    (one row of service_state) in a transaction of its own, as real jobs do."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.runs = 0

    def __call__(self, runtime: Any, job: Any) -> str:
        self.runs += 1
        run = self.runs
        if run == 1:
            self.started.set()
            assert self.release.wait(30)
        with runtime.unit_of_work() as uow:
            uow.state.write(f"outcome-{run}", {"run": run}, runtime.now())
        return f"run {run}"


@pytest.fixture
def blocking(monkeypatch: pytest.MonkeyPatch, runtime: Any) -> BlockingJob:
    handler = BlockingJob()
    monkeypatch.setitem(runtime.job_handlers, SLOW, lambda job, _finish: handler(runtime, job))
    return handler


def _in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run_once, daemon=True)
    thread.start()
    return thread


def test_a_job_whose_lease_was_taken_over_cannot_commit(runtime, clock, blocking) -> None:
    _with(runtime, job_lease_seconds=5, job_lease_renew_seconds=0)  # A stalls, no renewal
    _enqueue(runtime)
    lost_before = metrics.LEASES_LOST.labels(kind=SLOW)._value.get()
    first = _in_thread(Worker(runtime, worker_id="worker-a"))
    assert blocking.started.wait(10)

    clock.moment += timedelta(seconds=6)  # A's lease expired: B takes the job over
    assert Worker(runtime, worker_id="worker-b").run_once() is True
    blocking.release.set()
    first.join(10)

    assert _state(runtime, "outcome-2") == {"run": 2}  # B's outcome
    assert _state(runtime, "outcome-1") is None  # A's commit was refused
    job = _job(runtime.engine)
    assert (job["status"], job["attempts"], job["locked_by"]) == ("done", 2, "worker-b")
    assert metrics.LEASES_LOST.labels(kind=SLOW)._value.get() == lost_before + 1


def test_a_running_job_renews_its_lease(runtime, clock, blocking) -> None:
    _with(runtime, job_lease_seconds=5, job_lease_renew_seconds=0.05)
    _enqueue(runtime)
    first = _in_thread(Worker(runtime, worker_id="worker-a"))
    assert blocking.started.wait(10)
    clock.moment += timedelta(seconds=6)  # past the first lease, but A keeps renewing
    deadline = clock.moment + timedelta(seconds=5)
    for _ in range(100):
        if _job(runtime.engine)["lease_expires_at"] >= deadline:
            break
        threading.Event().wait(0.05)
    assert Worker(runtime, worker_id="worker-b").run_once() is False  # nothing to take over
    blocking.release.set()
    first.join(10)
    job = _job(runtime.engine)
    assert (job["status"], job["attempts"], job["locked_by"]) == ("done", 1, "worker-a")
    assert _state(runtime, "outcome-1") == {"run": 1}


def test_attempts_never_exceed_the_maximum(client, runtime, clock) -> None:
    _with(runtime, job_max_attempts=2, job_lease_seconds=5)
    referral_id = client.post(
        "/fhir/ServiceRequest",
        json=eligible_referral("capped"),
        headers={"Content-Type": FHIR_JSON},
    ).get_json()["id"]
    for attempt in (1, 2):  # two workers claim the job and vanish (kill -9) mid-job
        with runtime.engine.begin() as conn:
            job = outbox.claim(conn, worker_id=f"gone-{attempt}", now=clock(), lease_seconds=5)
        assert job is not None and job.attempts == attempt
        clock.moment += timedelta(seconds=6)
    worker = Worker(runtime, worker_id="survivor")
    assert worker.run_once() is False  # a third claim would be attempt 3 of 2
    assert worker.reap_exhausted() == 1
    job_row = _job(runtime.engine)
    assert (job_row["status"], job_row["attempts"]) == ("failed", 2)
    task = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    assert task["entry"][0]["resource"]["status"] == "failed"


def test_a_poisoned_webhook_job_is_dead_lettered_on_its_first_failure(runtime) -> None:
    # Recorded before the edge refused control characters (the endpoint now answers 400).
    poisoned = service_request(id="ehr-poisoned")
    poisoned["identifier"][0]["value"] = "nul\u0000x"
    recorded = webhooks.record_resource(runtime, poisoned, runtime.now(), runtime.settings)
    assert recorded.event_id is not None
    before = metrics.JOBS_DEAD_LETTERED.labels(kind=JobKind.WEBHOOK_EVENT, cause="unreadable")
    count = before._value.get()

    assert Worker(runtime).run_once() is True
    job = _job(runtime.engine)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "identifier[0].value holds the control character U+0000" in job["last_error"]
    assert "nul" not in job["last_error"]  # the reason, never the content
    assert before._value.get() == count + 1
    assert Worker(runtime).run_once() is False  # not retried


def test_a_booking_that_cannot_succeed_fails_its_task_at_once_with_the_reason(
    client, runtime, monkeypatch
) -> None:
    from referral_service.domain.scheduling.booking import NotBookable

    def not_bookable(runtime: Any, job: Any) -> str:
        raise NotBookable("the decision names no protocol")

    monkeypatch.setitem(runtime.job_handlers, "book", lambda job, _f: not_bookable(runtime, job))
    referral_id = client.post(
        "/fhir/ServiceRequest", json=eligible_referral("nb"), headers={"Content-Type": FHIR_JSON}
    ).get_json()["id"]
    worker = Worker(runtime)
    assert worker.run_until_idle() == 2  # evaluate, then book once: no retry
    with runtime.engine.connect() as conn:
        book = conn.execute(select(jobs).where(jobs.c.kind == "book")).mappings().one()
    assert (book["status"], book["attempts"]) == ("failed", 1)
    task = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    resource = task["entry"][0]["resource"]
    assert resource["status"] == "failed"
    assert "retrying cannot fix it: NotBookable" in str(resource)
    detail = client.get(f"/api/referrals/{referral_id}").get_json()
    assert any(e.get("kind") == "gave-up" for e in detail.get("events", []))


def test_each_retry_logs_one_warning_and_counts_by_kind_and_cause(
    client, runtime, monkeypatch, caplog
) -> None:
    from referral_service.adapters.ehr.errors import EhrUnavailable

    def ehr_down(runtime: Any, job: Any) -> str:
        try:
            raise EhrUnavailable("EHR unreachable (read): ConnectionError")
        except EhrUnavailable as exc:
            raise RetryLater(type(exc).__name__) from exc

    monkeypatch.setitem(runtime.job_handlers, "evaluate", lambda job, _f: ehr_down(runtime, job))
    retries = metrics.JOB_RETRIES.labels(kind="evaluate", cause="ehrunavailable")
    before = retries._value.get()
    client.post(
        "/fhir/ServiceRequest",
        json=eligible_referral("visible"),
        headers={"Content-Type": FHIR_JSON},
    )
    caplog.set_level("WARNING", logger="referral_service.worker")
    assert Worker(runtime).run_once() is True
    warnings = [r for r in caplog.records if r.name == "referral_service.worker"]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert "EhrUnavailable" in warnings[0].getMessage()
    assert "Testperson" not in warnings[0].getMessage()  # ids and causes only
    assert retries._value.get() == before + 1
