"""Keeping a running job's lease: a heartbeat thread renews it while the job works, and a fence
on the engine refuses any commit the job makes once another worker has taken it over.

The fence runs just before every unit of work commits while a lease is held (the job's own
writes: its Task, history, appointment row, its completion): it re-reads the job row (locked
FOR UPDATE on PostgreSQL, under SQLite's single writer lock) and raises LeaseLost, which rolls
the transaction back, when the row no longer names this worker's attempt. (It runs in the unit
of work, not in the engine's commit event: a statement inside that event leaves SQLite's
connection in a transaction of its own.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from referral_service.adapters import lease as leases
from referral_service.adapters.db import outbox
from referral_service.adapters.db.outbox import Job
from referral_service.adapters.lease import Lease, LeaseLost

log = logging.getLogger(__name__)


def check_fence(conn: Connection) -> None:
    """Refuse the commit (LeaseLost) when the running job's lease was lost; nothing to do
    outside a job, nor for a PostgreSQL READ ONLY transaction (a job's read-only unit of work,
    unit_of_work.py), which cannot have written anything to refuse."""
    lease = leases.current()
    if lease is None or lease.settled.is_set():
        return
    if conn.get_execution_options().get("postgresql_readonly", False):
        return
    job = Job(lease.job_id, lease.kind, None, {}, lease.attempt, 0)
    if lease.lost.is_set() or not outbox.holds_lease(conn, job, worker_id=lease.worker_id):
        lease.lost.set()
        raise LeaseLost(f"job {lease.job_id} attempt {lease.attempt}: commit refused")


class _Renewer(threading.Thread):
    def __init__(
        self,
        engine: Engine,
        lease: Lease,
        job: Job,
        now: Callable[[], datetime],
        lease_seconds: int,
        every: float,
    ) -> None:
        super().__init__(name=f"lease-{job.id}", daemon=True)
        self.engine, self.lease, self.job, self.now = engine, lease, job, now
        self.lease_seconds, self.every = lease_seconds, every
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(self.every):
            try:
                with self.engine.begin() as conn:
                    kept = outbox.renew(
                        conn,
                        self.job,
                        worker_id=self.lease.worker_id,
                        now=self.now(),
                        lease_seconds=self.lease_seconds,
                    )
            except Exception as exc:  # the database may be away: the lease may still hold
                log.warning("lease renewal failed: %s", type(exc).__name__)
                continue
            if not kept:
                self.lease.lost.set()
                return


@contextmanager
def kept(
    engine: Engine,
    job: Job,
    worker_id: str,
    *,
    now: Callable[[], datetime],
    lease_seconds: int,
    renew_every: float | None,
) -> Iterator[Lease]:
    """Hold the job's lease for the duration of the block (renewed every `renew_every` seconds;
    None: never, the lease then lasts `lease_seconds` from the claim)."""
    lease = Lease(job.id, job.attempts, worker_id, job.kind)
    renewer: Any = None
    if renew_every:
        renewer = _Renewer(engine, lease, job, now, lease_seconds, renew_every)
        renewer.start()
    try:
        with leases.holding(lease):
            yield lease
    finally:
        if renewer is not None:
            renewer.finished.set()
            renewer.join(timeout=5)
