"""What a referral's evaluate and book jobs cost the database on PostgreSQL: how many
transactions and statements each opens (every one is a round trip or more the booking waits
for), and the guarantees kept while cutting them: a job's read-only reads cannot write, and a
job whose lease was lost still commits nothing."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from psycopg import pq
from sqlalchemy import event, select, text, update

from referral_service.adapters import lease as leases
from referral_service.adapters.db import outbox
from referral_service.adapters.db.tables import jobs, referrals, tasks
from referral_service.adapters.lease import Lease
from referral_service.worker import Worker
from referral_service.worker_lanes import DECISIONS, EHR_WORK, WorkerLanes
from tests.integration.worker.test_ehr_faults_sekmet import Clinic
from tests.support.referrals import FHIR_JSON, eligible_referral, post_referral

HEADERS = {"Content-Type": FHIR_JSON}


@pytest.fixture
def database_url(fresh_postgres_url: str) -> str:
    return fresh_postgres_url  # BEGIN READ ONLY and the fence's round trips are PostgreSQL's


@pytest.fixture
def traffic(engine):
    """Every transaction begun and statement sent through the engine, as (kind, text)."""
    seen: list[tuple[str, str]] = []

    def on_begin(_conn):  # type: ignore[no-untyped-def]
        seen.append(("begin", ""))

    def on_statement(conn, _cursor, statement, *_rest):  # type: ignore[no-untyped-def]
        piped = conn.connection.driver_connection.pgconn.pipeline_status != pq.PipelineStatus.OFF
        seen.append(("piped" if piped else "sql", statement))

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "after_cursor_execute", on_statement)
    yield seen
    event.remove(engine, "begin", on_begin)
    event.remove(engine, "after_cursor_execute", on_statement)


def _run(worker: Worker, traffic: list[tuple[str, str]]) -> tuple[int, list[str]]:
    traffic.clear()
    assert worker.run_once(look_first=False) is True
    statements = [text for kind, text in traffic if kind in ("sql", "piped")]
    return sum(1 for kind, _ in traffic if kind == "begin"), statements


def _piped(traffic: list[tuple[str, str]]) -> list[str]:
    """The statements sent in pipeline mode (together, one round trip per run of them)."""
    return [
        text.split("(")[0].split(" SET ")[0].strip() for kind, text in traffic if kind == "piped"
    ]


def test_the_evaluate_and_book_jobs_keep_to_their_transaction_budget(
    client, runtime, engine, traffic
) -> None:
    """evaluate: claim, one read-only unit (the referral with its Task, the sender's stored
    resources), one commit of decision + booking job + its own completion, the decision's four
    writes sent together; book (the clinic's chairs): claim, one read, one commit. Before: 5
    transactions and 18 statements for evaluate (its Task read four times), each write its own
    round trip; earlier still 6 and 3 transactions, a two-statement claim and a fence query in
    every read-only unit."""
    worker = Worker(runtime)
    created = client.post("/fhir/ServiceRequest", json=eligible_referral("budget"), headers=HEADERS)
    assert created.status_code == 201

    transactions, statements = _run(worker, traffic)  # evaluate
    assert transactions == 3, statements
    assert len(statements) == 14, statements
    claims = [s for s in statements if "jobs" in s.split("WHERE")[0] and "UPDATE" in s[:7]]
    assert len(claims) == 2  # the claim (one statement) and the completion, nothing else
    assert len([s for s in statements if s.startswith("SELECT tasks")]) == 0, "read with it"
    assert _piped(traffic) == [
        "UPDATE referrals",
        "UPDATE tasks",
        "INSERT INTO referral_events",
        "INSERT INTO jobs",
    ]

    transactions, statements = _run(worker, traffic)  # book
    assert transactions == 3, statements
    assert not [s for s in statements if s.startswith("SELECT jobs")], "no separate claim read"
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.kind, jobs.c.status).order_by(jobs.c.id)).all()
    assert [tuple(r) for r in rows] == [("evaluate", "done"), ("book", "done")]


def test_the_referral_is_read_with_its_task_as_separate_reads_give_them(client, runtime) -> None:
    referral_id = post_referral(client, eligible_referral("joined"))
    with runtime.unit_of_work() as uow:
        task = uow.tasks.for_referral(referral_id)
        assert uow.referrals.with_task(referral_id) == (uow.referrals.get(referral_id), task)
        locked = uow.referrals.head_with_task(referral_id, for_update=True)
        assert locked == (uow.referrals.head(referral_id), task)
        assert uow.referrals.with_task("unknown") is None
        assert uow.referrals.head_with_task("unknown", for_update=True) is None


def test_the_decisions_locked_read_sees_the_task_its_last_locker_left(
    client, runtime, engine
) -> None:
    """The decision reads the Task in the statement that locks the referral: a placer's Task
    change that held the referral's lock meanwhile is still what it sees (locking only the
    referral would hand over the Task as it was when the statement began)."""
    referral_id = post_referral(client, eligible_referral("locked"))
    seen: list[Any] = []

    def decision_read() -> None:
        with runtime.unit_of_work() as uow:
            seen.append(uow.referrals.head_with_task(referral_id, for_update=True))

    reader = threading.Thread(target=decision_read)
    with engine.begin() as placer:
        placer.execute(
            select(referrals.c.id).where(referrals.c.id == referral_id).with_for_update()
        )
        reader.start()
        _until_waiting_on_a_lock(engine)
        placer.execute(
            update(tasks)
            .where(tasks.c.referral_id == referral_id)
            .values(business_status="cancelled", version_id=tasks.c.version_id + 1)
        )
    reader.join(10)
    [(_, task)] = seen
    assert (task.state.business_status, task.version_id) == ("cancelled", 2)


def _until_waiting_on_a_lock(engine) -> None:  # type: ignore[no-untyped-def]
    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
    for _ in range(200):
        with engine.connect() as conn:
            if conn.execute(waiting).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("the decision's read never waited for the referral's lock")


@pytest.mark.ehr
def test_the_book_job_on_the_ehr_keeps_to_its_statement_budget(
    sekmet_server, fresh_postgres_url: str
) -> None:
    """Booking on a real EHR (SEKMET): the claim, one read-only unit, the clinic's booking lock
    (its limits and the lock in one statement, no liveness probe while freshly held), and one
    commit whose appointment row is inserted without a read first or a savepoint. Before: 21
    statements."""
    clinic = Clinic(sekmet_server, fresh_postgres_url, chairs=3, days=3)
    try:
        referral_id = clinic.refer(eligible_referral("ehr-budget"))
        assert Worker(clinic.runtime(), lane=DECISIONS).run_until_idle() == 1
        seen: list[tuple[str, str]] = []
        event.listen(clinic.engine, "begin", lambda _conn: seen.append(("begin", "")))
        event.listen(
            clinic.engine,
            "after_cursor_execute",
            lambda _conn, _cursor, statement, *_rest: seen.append(("sql", statement)),
        )
        transactions, statements = _run(Worker(clinic.runtime(), lane=EHR_WORK), seen)
        assert clinic.business_status(referral_id) == "booked"
    finally:
        clinic.engine.dispose()
    assert not [s for s in statements if s.startswith(("SAVEPOINT", "RELEASE", "SELECT 1"))]
    assert len([s for s in statements if "lock_timeout" in s]) == 1
    assert len([s for s in statements if s.startswith("SELECT appointments")]) <= 1
    assert transactions == 4, statements
    assert len(statements) == 15, statements


def test_a_jobs_read_only_unit_cannot_write(runtime) -> None:
    """It skips the lease fence because it is BEGIN READ ONLY on PostgreSQL."""
    lease = Lease(job_id=1, attempt=1, worker_id="w", kind="evaluate")
    refused = pytest.raises(Exception, match="read-only transaction")
    with leases.holding(lease), refused, runtime.unit_of_work(read_only=True) as uow:
        outbox.enqueue(uow.connection, "evaluate", now=runtime.now(), max_attempts=3)
    with runtime.unit_of_work() as uow:  # the pooled connection is read-write again
        outbox.enqueue(uow.connection, "evaluate", now=runtime.now(), max_attempts=3)


def test_a_job_that_lost_its_lease_still_commits_nothing(client, runtime, engine) -> None:
    """The fence is skipped only for read-only units: the decision's commit is still refused."""
    created = client.post("/fhir/ServiceRequest", json=eligible_referral("lost"), headers=HEADERS)
    referral_id = created.get_json()["id"]
    real = runtime.job_handlers["evaluate"]

    def taken_over_midway(job, finish):  # type: ignore[no-untyped-def]
        with engine.begin() as conn:  # another worker takes the job over
            conn.execute(
                jobs.update().where(jobs.c.id == job.id).values(attempts=9, locked_by="other")
            )
        return real(job, finish)

    runtime.job_handlers["evaluate"] = taken_over_midway
    Worker(runtime).run_once(look_first=False)
    history = client.get(f"/api/referrals/{referral_id}").get_json()["events"]
    assert "evaluated" not in [e["kind"] for e in history]
    with engine.connect() as conn:
        assert conn.execute(select(jobs.c.kind)).scalars().all() == ["evaluate"]


def test_a_claim_commits_without_waiting_for_its_flush_and_only_it(runtime, engine) -> None:
    """The claim's own autocommit transaction is asynchronous; the pooled connection's next
    transaction (a job's durable writes) is synchronous again."""
    with engine.begin() as conn:
        outbox.enqueue(conn, "evaluate", now=runtime.now(), max_attempts=3)
    with outbox.claiming(engine) as conn:
        job = outbox.claim(conn, worker_id="w", now=runtime.now(), lease_seconds=60)
        assert job is not None and job.attempts == 1
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() == backend
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    with outbox.claiming(engine) as conn:  # nothing more is due
        assert outbox.claim(conn, worker_id="w", now=runtime.now(), lease_seconds=60) is None


def test_a_claim_says_whether_another_job_of_its_lane_was_due(runtime, engine) -> None:
    """In the claim's own statement: a worker that saw no other job due need not claim again
    before a notification says so."""
    lane = outbox.Lane("ehr", ("evaluate",), others=True)
    with engine.begin() as conn:
        for kind in ("book", "evaluate", "book"):
            outbox.enqueue(conn, kind, now=runtime.now(), max_attempts=3)

    def claim():  # type: ignore[no-untyped-def]
        with outbox.claiming(engine) as conn:
            return outbox.claim_and_look(
                conn, worker_id="w", now=runtime.now(), lease_seconds=60, lane=lane
            )

    first, more = claim()
    assert first is not None and first.kind == "book" and more is True
    second, more = claim()
    assert second is not None and second.id != first.id and more is False  # evaluate: not ours
    assert claim() == (None, False)


def test_the_lanes_claim_no_more_than_three_times_a_booking(client, runtime, engine) -> None:
    """Evaluate and book, the worker's lanes listening for notifications: a lane whose claim
    saw nothing else due waits for the next notification instead of claiming at once, and a
    wake-up already answered by a claim is not claimed on again. It was five claims a booking
    (three finding nothing)."""
    runtime.settings = replace(runtime.settings, worker_wake=None, worker_listen=True)
    claims: list[str] = []

    def on_statement(_conn, _cursor, statement, *_rest):  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE jobs") and "attempts + " in statement:
            claims.append(statement)

    lanes = WorkerLanes(runtime)
    thread = threading.Thread(target=lanes.run_forever, daemon=True)
    thread.start()
    time.sleep(0.3)  # every lane looked once, found nothing and listens
    event.listen(engine, "after_cursor_execute", on_statement)
    bookings = 6
    try:
        for n in range(bookings):
            created = client.post(
                "/fhir/ServiceRequest", json=eligible_referral(f"claims-{n}"), headers=HEADERS
            )
            assert created.status_code == 201
            deadline = time.monotonic() + 10
            while _booked(engine) < n + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # the lanes settle: any claim a wake-up left pending is made
        assert _booked(engine) == bookings
    finally:
        lanes.stop()
        thread.join(5)
        event.remove(engine, "after_cursor_execute", on_statement)
    assert 2 * bookings <= len(claims) <= 3 * bookings


def _booked(engine) -> int:  # type: ignore[no-untyped-def]
    query = select(jobs.c.id).where(jobs.c.kind == "book", jobs.c.status == "done")
    with engine.connect() as conn:
        return len(conn.execute(query).all())
