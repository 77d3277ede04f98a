"""The background worker: claims outbox jobs, runs them, retries with backoff, gives up after
the configured attempts. SIGTERM lets the current job finish; kill -9 loses nothing, because a
claimed job's lease expires and another worker takes it over."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy.exc import OperationalError

from referral_service.adapters.db import outbox
from referral_service.adapters.db.job_notify import JobNotifyListener, open_job_listener
from referral_service.adapters.db.outbox import Job
from referral_service.adapters.heartbeat import Heartbeat
from referral_service.adapters.wakeup import WakeListener, open_listener
from referral_service.observability import metrics
from referral_service.services.jobs import RetryLater
from referral_service.services.staff import audit

log = logging.getLogger(__name__)
OUTAGE_PAUSE_SECONDS = 2.0
# While PostgreSQL notifications wake the worker, the idle poll is only a safety net (jobs that
# come due later: retries after a backoff, expired leases), so it need not hammer the database.
LISTENING_POLL_SECONDS = 1.0


class Worker:
    def __init__(self, runtime: Any, worker_id: str | None = None) -> None:
        self.runtime = runtime
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stopping = threading.Event()
        self._wake: WakeListener | JobNotifyListener | None = None

    def stop(self) -> None:
        self.stopping.set()
        if self._wake is not None:
            self._wake.interrupt()

    def run_forever(self) -> None:
        log.info("worker started", extra={"worker": self.worker_id})
        last_stats = 0.0
        poll = self.runtime.settings.worker_poll_seconds
        wake = self._wake = self._open_wake_up()
        heartbeat_file = self.runtime.settings.worker_heartbeat_file
        heartbeat = Heartbeat(heartbeat_file) if heartbeat_file else None
        busy = False
        try:
            while not self.stopping.is_set():
                if heartbeat is not None:
                    heartbeat.beat()
                if time.monotonic() - last_stats > 5:
                    self._publish_queue_stats()
                    last_stats = time.monotonic()
                # Right after a job (often one that queued the next, evaluate -> book) go
                # straight to the claim; the lock-free look first is for the idle poll.
                busy = self._run_once_surviving(look_first=not busy)
                if not busy:
                    if isinstance(wake, JobNotifyListener) and wake.listening:
                        wake.wait(max(poll, LISTENING_POLL_SECONDS))
                    elif wake is not None:
                        wake.wait(poll)
                    else:
                        self.stopping.wait(poll)
        finally:
            self._wake = None
            if wake is not None:
                wake.close()
        log.info("worker stopped", extra={"worker": self.worker_id})

    def _open_wake_up(self) -> WakeListener | JobNotifyListener | None:
        """PostgreSQL NOTIFY (any host) when available, else the API's loopback UDP nudge."""
        settings = self.runtime.settings
        if settings.worker_listen:
            listener = open_job_listener(self.runtime.engine)
            if listener is not None:
                return listener
        return open_listener(settings.worker_wake)

    def _run_once_surviving(self, look_first: bool = True) -> bool:
        """A database outage pauses the worker instead of ending it; a job it had claimed is
        taken up again when its lease expires."""
        try:
            return self.run_once(look_first=look_first)
        except OperationalError as exc:
            log.error("database unavailable: %s; retrying", type(exc.orig).__name__)
            self.stopping.wait(OUTAGE_PAUSE_SECONDS)
            return False

    def run_until_idle(self, max_jobs: int = 10_000) -> int:
        """Run every job that is due now (for tests and the CLI's one-shot mode)."""
        done = 0
        while done < max_jobs and self.run_once():
            done += 1
        return done

    def run_once(self, look_first: bool = True) -> bool:
        """Claim and run one due job; False when there was none. `look_first`: check with a
        lock-free read before claiming (a claim takes SQLite's write lock)."""
        settings = self.runtime.settings
        if look_first:
            with self.runtime.engine.connect().execution_options(read_only=True) as conn:
                if not outbox.has_due(conn, now=self.runtime.now()):
                    return False
        with self.runtime.engine.begin() as conn:
            job = outbox.claim(
                conn,
                worker_id=self.worker_id,
                now=self.runtime.now(),
                lease_seconds=settings.job_lease_seconds,
            )
        if job is None:
            return False
        self._execute(job)
        return True

    def _execute(self, job: Job) -> None:
        started = time.monotonic()
        kept: list[bool] = []

        def finish(uow: Any, result: str) -> None:
            """The job's completion, in the handler's last transaction (commits with it)."""
            conn = uow.connection
            kept.append(
                outbox.complete(conn, job, worker_id=self.worker_id, now=self.runtime.now())
            )
            self._record_attempt(uow, job, result)

        try:
            result = self.runtime.run_job(job, finish)
        except Exception as exc:  # every failure is retried or recorded, never dropped
            self._failed(job, exc)
            return
        if not kept:
            with self.runtime.unit_of_work() as uow:
                finish(uow, result)
        owned = kept[0]
        log.info(
            "job done",
            extra={
                "job": job.id,
                "kind": job.kind,
                "result": result,
                "referral_id": job.referral_id,
                "lease_kept": owned,
                "duration_ms": round((time.monotonic() - started) * 1000),
            },
        )

    def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        retryable = isinstance(exc, RetryLater)
        if not retryable:
            log.error("job raised %s", type(exc).__name__, extra={"job": job.id, "kind": job.kind})
        now = self.runtime.now()
        # Giving up on the job and failing its referral's Task are one transaction.
        with self.runtime.unit_of_work() as uow:
            conn = uow.connection
            self._record_attempt(uow, job, f"failed: {type(exc).__name__}")
            if job.attempts >= job.max_attempts:
                outbox.give_up(conn, job, worker_id=self.worker_id, now=now, error=error)
                self.runtime.job_gave_up(uow, job, error)
            else:
                outbox.retry_later(
                    conn,
                    job,
                    worker_id=self.worker_id,
                    now=now,
                    error=error,
                    backoff_base=self.runtime.settings.job_backoff_base_seconds,
                )

    def _record_attempt(self, uow: Any, job: Job, result: str) -> None:
        audit.record_job(uow, job, result, self.runtime.now())  # worker-side audit trail
        if job.referral_id is not None:
            uow.events.add(
                job.referral_id,
                "job-attempt",
                self.runtime.now(),
                job=job.kind,
                attempt=job.attempts,
                result=result[:120],
            )

    def _publish_queue_stats(self) -> None:
        try:
            with self.runtime.engine.connect() as conn:
                depth, oldest = outbox.queue_stats(conn, now=self.runtime.now())
            metrics.set_queue_stats(depth, oldest)
        except Exception as exc:  # metrics must never stop the worker
            log.warning("queue stats failed: %s", type(exc).__name__)
