"""The background worker: claims outbox jobs, runs them, retries with backoff, gives up after
the configured attempts. SIGTERM lets the current job finish; kill -9 loses nothing, because a
claimed job's lease expires and another worker takes it over.

While a job runs its lease is renewed (adapters/db/job_lease.py); a job whose lease was lost
anyway (a stalled process) can neither call the EHR nor commit again. A failure retrying cannot
fix (job_failures.py) is dead-lettered at once. Each Worker serves one lane of job
kinds; `worker_lanes.py` runs decisions and EHR work side by side."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError

from referral_service import job_failures
from referral_service.adapters import lease as leases
from referral_service.adapters.db import job_lease, outbox
from referral_service.adapters.db.job_notify import JobNotifyListener, open_job_listener
from referral_service.adapters.db.outbox import EVERY_KIND, Job, Lane
from referral_service.adapters.heartbeat import Heartbeat
from referral_service.adapters.lease import LeaseLost
from referral_service.adapters.wakeup import WakeListener, open_listener
from referral_service.observability import metrics
from referral_service.services.ehr import hold_sweep
from referral_service.services.staff import audit

log = logging.getLogger(__name__)
OUTAGE_PAUSE_SECONDS = 2.0
# While PostgreSQL notifications wake the worker, the idle poll is only a safety net (jobs that
# come due later: retries after a backoff, expired leases), so it need not hammer the database.
LISTENING_POLL_SECONDS = 1.0


class Worker:
    def __init__(self, runtime: Any, worker_id: str | None = None, lane: Lane = EVERY_KIND) -> None:
        self.runtime = runtime
        self.lane = lane
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stopping = threading.Event()
        self._wake: WakeListener | JobNotifyListener | None = None
        # Set by a sibling lane (worker_lanes.py) whose job queued work for this one: claim at
        # once, without waiting for the wake-up (NOTIFY or UDP) or the poll.
        self._nudged = threading.Event()
        self.on_queued: Callable[[set[str]], None] | None = None
        # After the last job: is work for this lane known to be due (its claim saw another,
        # it queued one, or it failed)? Else, where notifications announce every queued job,
        # the loop waits for one instead of claiming at once and finding nothing.
        self._more_work = True

    def nudge(self) -> None:
        """Work for this lane was just committed in this process: claim now."""
        self._nudged.set()
        if self._wake is not None:
            self._wake.interrupt()

    def stop(self) -> None:
        self.stopping.set()
        self._nudged.set()  # ends an idle wait on it
        if self._wake is not None:
            self._wake.interrupt()

    def run_forever(self) -> None:
        log.info("worker started", extra={"worker": self.worker_id})
        last_stats = 0.0
        poll = self.runtime.settings.worker_poll_seconds
        wake = self._wake = self._open_wake_up()
        heartbeat_file = self.runtime.settings.worker_heartbeat_file
        heartbeat = Heartbeat(heartbeat_file) if heartbeat_file else None
        busy = notified = False
        self._schedule_hold_sweep()
        try:
            while not self.stopping.is_set():
                if heartbeat is not None:
                    heartbeat.beat()
                if time.monotonic() - last_stats > 5:
                    self._publish_queue_stats()
                    self.reap_exhausted()
                    last_stats = time.monotonic()
                # Right after a job that left work for this lane (its claim saw more due, it
                # queued some, or it failed; after any job where no notification would tell),
                # a PostgreSQL notification that one was queued, or a sibling lane's hand-over
                # (worker_lanes.py), go straight to the claim (there a claim that finds nothing
                # costs what the look would); the lock-free look first is for the idle poll and
                # SQLite's wake-up (a claim takes its write lock).
                nudged = self._nudged.is_set()
                self._nudged.clear()
                if isinstance(wake, JobNotifyListener) and wake.listening:
                    # What woke the loop before this claim is answered by it (and by the
                    # claim's look for more): a wake-up left pending would claim nothing.
                    wake.drain()
                ran = self._run_once_surviving(look_first=not (busy or notified or nudged))
                busy = ran and (self._more_work or not _announces_jobs(wake))
                notified = False
                if not busy and not self._nudged.is_set():
                    if isinstance(wake, JobNotifyListener) and wake.listening:
                        notified = wake.wait(max(poll, LISTENING_POLL_SECONDS))
                    elif wake is not None:
                        wake.wait(poll)
                    else:
                        self._nudged.wait(poll)
        finally:
            self._wake = None
            if wake is not None:
                wake.close()
        log.info("worker stopped", extra={"worker": self.worker_id})

    def _schedule_hold_sweep(self) -> None:
        """The first periodic EHR hold sweep (each sweep queues the next; one per period)."""
        if not self.runtime.settings.uses_ehr:
            return
        try:
            with self.runtime.unit_of_work() as uow:
                hold_sweep.schedule_next(uow, self.runtime.now())
        except OperationalError as exc:
            log.warning("could not queue the hold sweep: %s", type(exc.orig).__name__)

    def _open_wake_up(self) -> WakeListener | JobNotifyListener | None:
        """PostgreSQL NOTIFY (any host) when available, else the API's loopback UDP nudge."""
        settings = self.runtime.settings
        if settings.worker_listen:
            listener = open_job_listener(self.runtime.engine, self.lane.takes)
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
                if not outbox.has_due(conn, now=self.runtime.now(), lane=self.lane):
                    return False
        with outbox.claiming(self.runtime.engine) as conn:
            job, more_due = outbox.claim_and_look(
                conn,
                worker_id=self.worker_id,
                now=self.runtime.now(),
                lease_seconds=settings.job_lease_seconds,
                lane=self.lane,
            )
        if job is None:
            return False
        cpu = time.thread_time()
        self._more_work = True  # unless the job ends cleanly, queuing nothing for this lane
        self._execute(job, more_due)
        metrics.job_cpu(job.kind, time.thread_time() - cpu)
        return True

    def _execute(self, job: Job, more_due: bool = True) -> None:
        started = time.monotonic()
        settings = self.runtime.settings
        kept: list[bool] = []

        def finish(uow: Any, result: str) -> None:
            """The job's completion, in the handler's last transaction (commits with it)."""
            owned = outbox.complete(
                uow.connection, job, worker_id=self.worker_id, now=self.runtime.now()
            )
            kept.append(owned)
            if owned:
                lease = leases.current()
                if lease is not None:
                    lease.settled.set()
                self._record_attempt(uow, job, result)

        try:
            with job_lease.kept(
                self.runtime.engine,
                job,
                self.worker_id,
                now=self.runtime.now,
                lease_seconds=settings.job_lease_seconds,
                renew_every=settings.lease_renewal_seconds,
            ) as lease:
                result = self.runtime.run_job(job, finish)
                if not kept:
                    with self.runtime.unit_of_work() as uow:
                        finish(uow, result)
        except LeaseLost:
            self._lost(job)
            return
        except Exception as exc:  # every failure is retried or recorded, never dropped
            self._failed(job, exc)
            return
        owned = kept[0]
        if not owned:
            self._lost(job)
        else:
            self._more_work = more_due or any(self.lane.takes(kind) for kind in lease.queued)
            if lease.queued and self.on_queued is not None:
                self.on_queued(lease.queued)
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

    def _lost(self, job: Job) -> None:
        """Another worker owns the job now: this one's outcome was refused; it writes nothing."""
        metrics.job_lease_lost(job.kind)
        log.warning(
            "job lease lost; outcome refused",
            extra={"job": job.id, "kind": job.kind, "attempt": job.attempts},
        )

    def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        cause = type(exc.__cause__ or exc).__name__
        permanent = job_failures.is_permanent(exc)
        final = permanent or job.attempts >= job.max_attempts
        now = self.runtime.now()
        # Giving up on the job and failing its referral's Task are one transaction.
        with self.runtime.unit_of_work() as uow:
            conn = uow.connection
            if not outbox.holds_lease(conn, job, worker_id=self.worker_id):
                self._lost(job)
                return
            self._record_attempt(uow, job, f"failed: {type(exc).__name__}")
            if final:
                error = job_failures.reason(exc) if permanent else error
                outbox.give_up(conn, job, worker_id=self.worker_id, now=now, error=error)
                self.runtime.job_gave_up(uow, job, error, permanent=permanent)
            else:
                outbox.retry_later(
                    conn,
                    job,
                    worker_id=self.worker_id,
                    now=now,
                    error=error,
                    backoff_base=self.runtime.settings.job_backoff_base_seconds,
                )
        self._report_failure(job, cause, permanent, final)

    def _report_failure(self, job: Job, cause: str, permanent: bool, final: bool) -> None:
        """One line per failed attempt, ids and exception types only (never patient data)."""
        context = {"job": job.id, "kind": job.kind, "attempt": job.attempts, "cause": cause}
        if permanent:
            metrics.job_dead_lettered(job.kind, cause)
            log.error("job dead-lettered: retrying cannot fix %s", cause, extra=context)
        elif final:
            metrics.job_dead_lettered(job.kind, "attempts-exhausted")
            log.error("job gave up after %d attempts (%s)", job.attempts, cause, extra=context)
        else:
            metrics.job_retried(job.kind, cause)
            log.warning(
                "job attempt %d/%d failed (%s); will retry",
                job.attempts,
                job.max_attempts,
                cause,
                extra=context,
            )

    def reap_exhausted(self) -> int:
        """Give up the jobs whose last attempt's worker vanished; their referrals are told."""
        try:
            with self.runtime.unit_of_work() as uow:
                reaped = outbox.reap_exhausted(uow.connection, now=self.runtime.now())
                for job in reaped:
                    self.runtime.job_gave_up(uow, job, "attempts exhausted: the worker stopped")
        except Exception as exc:  # housekeeping must never stop the worker
            log.warning("reaping exhausted jobs failed: %s", type(exc).__name__)
            return 0
        for job in reaped:
            metrics.job_dead_lettered(job.kind, "attempts-exhausted")
        return len(reaped)

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


def _announces_jobs(wake: WakeListener | JobNotifyListener | None) -> bool:
    """Does the wake-up tell of every job queued anywhere (PostgreSQL's notifications, while
    listening)? The UDP nudge comes from the API only."""
    return isinstance(wake, JobNotifyListener) and wake.listening
