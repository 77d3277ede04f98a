"""The outbox: durable jobs, claimed with a lease so a crashed worker's job is taken over.

PostgreSQL claims with FOR UPDATE SKIP LOCKED, so any number of workers share the queue.
SQLite has one writer at a time (BEGIN IMMEDIATE, see engine.py), which serializes claims.

Each claim raises `attempts`, which doubles as the lease's fencing token: every later write of
the worker about the job (renewal, done, retry, give up) names the attempt it claimed, so a
worker whose lease expired and was taken over cannot change the job any more. A job is never
claimed beyond its maximum attempts; one whose last attempt's worker vanished is reaped.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from referral_service.adapters import lease as leases
from referral_service.adapters.db.engine import SKIPPING_INSERTS
from referral_service.adapters.db.tables import jobs


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    referral_id: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class Lane:
    """The job kinds one worker loop takes: `kinds`, or every kind but them (`others`)."""

    name: str
    kinds: tuple[str, ...] = ()
    others: bool = False

    def takes(self, kind: str) -> bool:
        if not self.kinds:
            return True
        return (kind not in self.kinds) if self.others else (kind in self.kinds)

    def condition(self, table: Any = jobs) -> Any:
        if not self.kinds:
            return true()
        return table.c.kind.not_in(self.kinds) if self.others else table.c.kind.in_(self.kinds)


EVERY_KIND = Lane("all")


# The skipping INSERT (ON CONFLICT DO NOTHING) where the dialect has one, each built once
# (adapters/db/referrals.py says why); inline(): no RETURNING of the new id (nobody reads it),
# so the insert can be pipelined with the writes around it.
_UPSERT_INSERTS: dict[str, Any] = {
    name: make(jobs).inline().on_conflict_do_nothing(index_elements=["dedupe_key"])
    for name, make in SKIPPING_INSERTS.items()
}
_INSERT = insert(jobs).inline()


def enqueue(
    conn: Connection,
    kind: str,
    *,
    now: datetime,
    max_attempts: int,
    referral_id: str | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    run_after: datetime | None = None,
) -> None:
    """Add a job in the caller's transaction; a job with the same dedupe key is not added twice."""
    lease = leases.current()
    if lease is not None:  # queued by a running job: a hint for the worker's other lanes
        lease.queued.add(kind)
    values = {
        "kind": kind,
        "referral_id": referral_id,
        "payload": payload or {},
        "status": "pending",
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": run_after or now,
        "dedupe_key": dedupe_key,
        "created_at": now,
        "updated_at": now,
    }
    if dedupe_key is None:
        conn.execute(_INSERT, values)
        return
    dialect = conn.dialect.name
    if dialect in _UPSERT_INSERTS:
        # Already queued (or done): the database skips the row, in the same round trip.
        conn.execute(_UPSERT_INSERTS[dialect], values)
        return
    # Elsewhere: rolling back to a savepoint keeps the caller's other work.
    with contextlib.suppress(IntegrityError), conn.begin_nested():
        conn.execute(insert(jobs), values)


def _ready(now: datetime, lane: Lane = EVERY_KIND, table: Any = jobs) -> Any:
    c = table.c
    return and_(
        or_(
            and_(c.status == "pending", c.run_after <= now),
            and_(c.status == "running", c.lease_expires_at < now),
        ),
        c.attempts < c.max_attempts,
        lane.condition(table),
    )


def _held(job: Job, worker_id: str) -> Any:
    """The job row as this worker claimed it: still running, at the attempt it claimed."""
    return and_(
        jobs.c.id == job.id,
        jobs.c.attempts == job.attempts,
        jobs.c.locked_by == worker_id,
        jobs.c.status == "running",
    )


def has_due(conn: Connection, *, now: datetime, lane: Lane = EVERY_KIND) -> bool:
    """A cheap read: is any job due? (Lets an idle worker poll often without taking locks.)"""
    query = select(jobs.c.id).where(_ready(now, lane)).limit(1)
    return conn.execute(query).first() is not None


@contextlib.contextmanager
def claiming(engine: Engine) -> Iterator[Connection]:
    """The connection a worker claims on. PostgreSQL: autocommit, the claim being one statement
    (one round trip instead of BEGIN, the claim, COMMIT). SQLite: a transaction, which takes its
    write lock (BEGIN IMMEDIATE)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn
        return
    with engine.begin() as conn:
        yield conn


def claim(
    conn: Connection,
    *,
    worker_id: str,
    now: datetime,
    lease_seconds: int,
    lane: Lane = EVERY_KIND,
) -> Job | None:
    """The next due job of the lane, leased to `worker_id`: one statement, one round trip.
    On PostgreSQL it makes its transaction's commit asynchronous: run it alone (`claiming`)."""
    return claim_and_look(
        conn, worker_id=worker_id, now=now, lease_seconds=lease_seconds, lane=lane
    )[0]


def claim_and_look(
    conn: Connection,
    *,
    worker_id: str,
    now: datetime,
    lease_seconds: int,
    lane: Lane = EVERY_KIND,
) -> tuple[Job | None, bool]:
    """`claim`, and in the same statement on PostgreSQL: was another job of the lane due
    besides the one claimed? (A worker that saw none need not claim again before a wake-up
    says so.) Jobs other workers are claiming at that moment count as due: a claim too many,
    never one too few. Elsewhere the answer is always yes."""
    query = select(jobs.c.id).where(_ready(now, lane)).order_by(jobs.c.run_after, jobs.c.id)
    chosen = jobs.c.id == query.limit(1).scalar_subquery()
    looks = conn.dialect.name == "postgresql"  # SQLite's RETURNING drops the alias it needs
    if looks:
        chosen = jobs.c.id == query.with_for_update(skip_locked=True).limit(1).scalar_subquery()
        # The claim's commit need not wait for its WAL flush (no fsync on the hand-off path):
        # a claim lost in a database crash only means the job is claimed again, and the job's
        # own commits, which are synchronous, flush it anyway. Set in the statement itself, as
        # its autocommit transaction has no other.
        chosen = and_(chosen, func.set_config("synchronous_commit", "off", True) == "off")
    claimed = (
        update(jobs)
        .where(chosen)
        .values(
            status="running",
            attempts=jobs.c.attempts + 1,
            locked_by=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(*_JOB_COLUMNS, *([_more_due(now, lane)] if looks else []))
    )
    row = conn.execute(claimed).mappings().first()
    if row is None:
        return None, False
    return _job(row), bool(row["more_due"]) if looks else True


def _more_due(now: datetime, lane: Lane) -> Any:
    other = jobs.alias("other")
    due = select(other.c.id).where(_ready(now, lane, other), other.c.id != jobs.c.id)
    return due.exists().label("more_due")


# Built once: every job ends with it (adapters/db/referrals.py says why). _held(), with binds.
_COMPLETE = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("job_id"),
        jobs.c.attempts == bindparam("claimed_attempt"),
        jobs.c.locked_by == bindparam("worker_id"),
        jobs.c.status == "running",
    )
    .values(status="done", lease_expires_at=None, updated_at=bindparam("done_at"), last_error=None)
)


def complete(conn: Connection, job: Job, *, worker_id: str, now: datetime) -> bool:
    """Mark done; False when the lease was lost and another worker owns the job now."""
    held = {"job_id": job.id, "claimed_attempt": job.attempts, "worker_id": worker_id}
    result = conn.execute(_COMPLETE, {**held, "done_at": now})
    return result.rowcount == 1


def renew(conn: Connection, job: Job, *, worker_id: str, now: datetime, lease_seconds: int) -> bool:
    """Extend the lease of a job still being worked on; False when it was lost."""
    result = conn.execute(
        update(jobs)
        .where(_held(job, worker_id))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
    )
    return result.rowcount == 1


def holds_lease(conn: Connection, job: Job, *, worker_id: str) -> bool:
    """Does this worker still hold the job? On PostgreSQL the row stays locked until the
    caller's transaction ends, so no other worker can take the job over before it commits."""
    query = select(jobs.c.id).where(_held(job, worker_id))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first() is not None


def retry_later(
    conn: Connection, job: Job, *, worker_id: str, now: datetime, error: str, backoff_base: float
) -> datetime:
    delay = backoff_base * (2 ** (job.attempts - 1)) * random.uniform(0.8, 1.2)
    run_after = now + timedelta(seconds=min(delay, 3600))
    conn.execute(
        update(jobs)
        .where(_held(job, worker_id))
        .values(
            status="pending",
            run_after=run_after,
            lease_expires_at=None,
            locked_by=None,
            last_error=error[:2000],
            updated_at=now,
        )
    )
    return run_after


def give_up(conn: Connection, job: Job, *, worker_id: str, now: datetime, error: str) -> None:
    conn.execute(
        update(jobs)
        .where(_held(job, worker_id))
        .values(status="failed", lease_expires_at=None, last_error=error[:2000], updated_at=now)
    )


def reap_exhausted(conn: Connection, *, now: datetime) -> list[Job]:
    """Fail the jobs whose last allowed attempt's worker vanished (lease expired): claiming them
    again would exceed their maximum attempts. The caller tells their referrals."""
    query = select(jobs).where(
        jobs.c.status == "running",
        jobs.c.lease_expires_at < now,
        jobs.c.attempts >= jobs.c.max_attempts,
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    reaped = [_job(row) for row in conn.execute(query).mappings()]
    for job in reaped:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.attempts == job.attempts)
            .values(
                status="failed",
                lease_expires_at=None,
                last_error="attempts exhausted: the last attempt's worker stopped",
                updated_at=now,
            )
        )
    return reaped


_JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.referral_id,
    jobs.c.payload,
    jobs.c.attempts,
    jobs.c.max_attempts,
)


def _job(row: Any) -> Job:
    return Job(
        row["id"],
        row["kind"],
        row["referral_id"],
        row["payload"],
        row["attempts"],
        row["max_attempts"],
    )


def reset_for_retry(conn: Connection, referral_id: str, kind: str, *, now: datetime) -> int:
    result = conn.execute(
        update(jobs)
        .where(jobs.c.referral_id == referral_id, jobs.c.kind == kind, jobs.c.status == "failed")
        .values(status="pending", attempts=0, run_after=now, last_error=None, updated_at=now)
    )
    return result.rowcount


def queue_stats(conn: Connection, *, now: datetime) -> tuple[int, float]:
    """(jobs waiting or running, age in seconds of the oldest of them)."""
    open_jobs = jobs.c.status.in_(("pending", "running"))
    depth, oldest = conn.execute(
        select(func.count(), func.min(jobs.c.created_at)).where(open_jobs)
    ).one()
    if oldest is None:
        return int(depth), 0.0
    if oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return int(depth), max(0.0, (now - oldest).total_seconds())
