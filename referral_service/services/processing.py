"""What the worker does with each kind of job, and what giving up on one means for its referral.

Handlers are idempotent: a job may run again after a crash or a lost lease, so each one checks
the referral's current state before acting and relies on database keys for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from referral_service.adapters.db import referrals as repo
from referral_service.adapters.db.outbox import Job
from referral_service.adapters.ehr.errors import EhrUnavailable
from referral_service.domain import lifecycle
from referral_service.observability import metrics
from referral_service.services.assessment import evaluate_stored_referral
from referral_service.services.booking import cancel_booking
from referral_service.services.booking_job import book_stored_referral
from referral_service.services.tasks import write_task


class RetryLater(Exception):
    """A temporary failure (the EHR is unreachable): run the job again after a backoff."""


Handler = Callable[[Any, Job], str]


def _evaluate(runtime: Any, job: Job) -> str:
    assert job.referral_id is not None
    try:
        return evaluate_stored_referral(runtime, job.referral_id)
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc


def _book(runtime: Any, job: Job) -> str:
    assert job.referral_id is not None
    return book_stored_referral(runtime, job.referral_id, RetryLater)


def _cancel(runtime: Any, job: Job) -> str:
    assert job.referral_id is not None
    try:
        cancel_booking(
            job.referral_id, engine=runtime.engine, ehr=runtime.ehr_client, now=runtime.now()
        )
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc
    with runtime.engine.begin() as conn:
        repo.add_event(conn, job.referral_id, "appointment-cancelled", runtime.now())
        write_task(conn, job.referral_id, lifecycle.CANCELLED, runtime.now())
    metrics.booking_finished("cancelled")
    return "cancelled"


HANDLERS: dict[str, Handler] = {"evaluate": _evaluate, "book": _book, "cancel": _cancel}


def register(kind: str, handler: Handler) -> None:
    """Other features (webhooks, EHR write-back) add their job kinds here."""
    HANDLERS[kind] = handler


def handle(runtime: Any, job: Job) -> str:
    handler = HANDLERS.get(job.kind)
    if handler is None:
        raise ValueError(f"no handler for job kind {job.kind!r}")
    return handler(runtime, job)


def gave_up(runtime: Any, job: Job, error: str, *, permanent: bool = False) -> None:
    """The job failed for good: the referral's Task says so, so staff can act (and retry).
    `permanent`: dead-lettered at once, `error` being why retrying cannot fix it."""
    if job.referral_id is None:
        return
    now = runtime.now()
    with runtime.engine.begin() as conn:
        task = repo.get_task_for_referral(conn, job.referral_id)
        repo.add_event(
            conn,
            job.referral_id,
            "gave-up",
            now,
            job=job.kind,
            attempts=job.attempts,
            error=error[:200],
            **({"dead_letter": True} if permanent else {}),
        )
        if task is not None and not task.state.is_final:
            write_task(
                conn,
                job.referral_id,
                lifecycle.EHR_FAILED,
                now,
                status_note=f"{job.kind} failed and retrying cannot fix it: {error[:300]}"
                if permanent
                else f"{job.kind} failed after {job.attempts} attempts",
            )
    if job.kind == "book":
        metrics.booking_finished("ehr-failed")


# Job kinds of the EHR webhooks and Task write-back (issue 5) register themselves on import.
from referral_service.services import (  # noqa: E402, F401
    ehr_hold_sweep,
    ehr_writeback,
    reconciliation,
    webhooks,
)
