"""Every kind of background job, and the one way to queue each.

A job is queued in the caller's unit of work (it commits with the change that needs it), with
the attempts the settings allow (REFERRAL_JOB_MAX_ATTEMPTS) and a dedupe key that makes queueing
it twice harmless. What the worker runs for each kind is wired in `referral_service.runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from referral_service.adapters.db.outbox import Job
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork

__all__ = ["Finish", "Handler", "Job", "JobKind", "RetryLater"]


class JobKind(StrEnum):
    EVALUATE = "evaluate"  # run the eligibility engine on a stored referral, move its Task
    BOOK = "book"  # book an eligible referral's infusion
    CANCEL = "cancel"  # cancel a referral's appointment
    EHR_TASK_WRITEBACK = "ehr-task-writeback"  # copy a changed Task to the clinic EHR
    WEBHOOK_EVENT = "webhook-event"  # take up an EHR notification
    EHR_RECONCILE = "ehr-reconcile"  # catch up with EHR orders the webhooks missed
    EHR_HOLD_SWEEP = "ehr-hold-sweep"  # free EHR Slots held for Appointments that dropped them
    SUBSCRIPTION_HANDSHAKE = "subscription-handshake"  # a referrer's new Subscription's handshake
    SUBSCRIPTION_NOTIFY = "subscription-notify"  # send a Subscription its undelivered events
    SUBSCRIPTION_HEARTBEAT = "subscription-heartbeat"  # tell a quiet Subscription it is alive


class RetryLater(Exception):
    """A temporary failure (the EHR is unreachable): run the job again after a backoff."""


def evaluate_new(uow: SqlUnitOfWork, referral_id: str, now: datetime) -> None:
    """A new referral's first evaluation (it cannot have one queued: no dedupe key needed)."""
    uow.jobs.add(JobKind.EVALUATE, now=now, referral_id=referral_id, payload={"version": 1})


def evaluate_version(uow: SqlUnitOfWork, referral_id: str, version: int, now: datetime) -> None:
    uow.jobs.add(
        JobKind.EVALUATE,
        now=now,
        referral_id=referral_id,
        payload={"version": version},
        dedupe_key=f"evaluate:{referral_id}:{version}",
    )


def evaluate_after_change(uow: SqlUnitOfWork, referral_id: str, change: str, now: datetime) -> None:
    """Evaluate again because a resource the referral waits on changed (`change`: its history
    reference)."""
    uow.jobs.add(
        JobKind.EVALUATE,
        now=now,
        referral_id=referral_id,
        payload={"after": change},
        dedupe_key=f"evaluate:{referral_id}:{change}",
    )


def book(uow: SqlUnitOfWork, referral_id: str, now: datetime, attempt_key: str) -> None:
    """One booking job per referral version (or staff action); booking itself is idempotent."""
    uow.jobs.add(
        JobKind.BOOK,
        now=now,
        referral_id=referral_id,
        dedupe_key=f"book:{referral_id}:{attempt_key}",
    )


def cancel(uow: SqlUnitOfWork, referral_id: str, now: datetime) -> None:
    uow.jobs.add(
        JobKind.CANCEL, now=now, referral_id=referral_id, dedupe_key=f"cancel:{referral_id}"
    )


def write_back_task(uow: SqlUnitOfWork, referral_id: str, version: int, now: datetime) -> None:
    kind = JobKind.EHR_TASK_WRITEBACK
    uow.jobs.add(
        kind, now=now, referral_id=referral_id, dedupe_key=f"{kind}:{referral_id}:{version}"
    )


def take_webhook_event(uow: SqlUnitOfWork, event_id: Any, now: datetime) -> None:
    kind = JobKind.WEBHOOK_EVENT
    uow.jobs.add(kind, now=now, payload={"event": event_id}, dedupe_key=f"{kind}:{event_id}")


def reconcile_periodically(uow: SqlUnitOfWork, now: datetime, *, minutes: int = 10) -> None:
    """The next periodic reconciliation, at the start of the next period: one job per period
    however many callers ask."""
    period = timedelta(minutes=max(1, minutes))
    index = int(now.timestamp() // period.total_seconds()) + 1
    run_after = datetime.fromtimestamp(index * period.total_seconds(), tz=now.tzinfo)
    kind = JobKind.EHR_RECONCILE
    uow.jobs.add(
        kind,
        now=now,
        payload={"reason": "periodic", "minutes": int(period.total_seconds() // 60)},
        dedupe_key=f"{kind}:{int(period.total_seconds())}:{index}",
        run_after=run_after,
    )


def handshake_subscription(uow: SqlUnitOfWork, subscription_id: str, now: datetime) -> None:
    kind = JobKind.SUBSCRIPTION_HANDSHAKE
    uow.jobs.add(kind, now=now, payload={"subscription": subscription_id})


def notify_subscription(
    uow: SqlUnitOfWork, subscription_id: str, event_number: int | None, now: datetime
) -> None:
    """Deliver the Subscription's events up to `event_number` at least (None: resume after a
    handshake, whatever is waiting)."""
    kind = JobKind.SUBSCRIPTION_NOTIFY
    key = None if event_number is None else f"{kind}:{subscription_id}:{event_number}"
    uow.jobs.add(kind, now=now, payload={"subscription": subscription_id}, dedupe_key=key)


def heartbeat_subscription(
    uow: SqlUnitOfWork, subscription_id: str, period_seconds: int, now: datetime
) -> None:
    """The Subscription's next heartbeat check, at the start of its next period: on a grid, so
    two chains (a second handshake) meet in one job per period."""
    index = int(now.timestamp() // period_seconds) + 1
    kind = JobKind.SUBSCRIPTION_HEARTBEAT
    uow.jobs.add(
        kind,
        now=now,
        payload={"subscription": subscription_id},
        dedupe_key=f"{kind}:{subscription_id}:{index}",
        run_after=datetime.fromtimestamp(index * period_seconds, tz=now.tzinfo),
    )


# How a handler ends its job inside its last unit of work (the job's completion commits with
# the handler's writes); the worker completes a job whose handler did not call it.
Finish = Callable[[SqlUnitOfWork, str], None]
Handler = Callable[[Job, Finish], str]
