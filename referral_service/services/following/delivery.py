"""Telling referrers: a Task change becomes a numbered event of every live Subscription of the
referral's sender that covers it (in the Task change's own transaction), and the worker sends
them: the handshake, each event in order (retried with backoff until the job's attempts are
spent, then the Subscription is `error`), heartbeats when asked.

Delivery is at least once: an event is marked delivered only after its endpoint's 2xx, so a
crash in between sends it again; receivers dedupe on the event number.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from referral_service.adapters.db.subscriptions import SubscriptionRow
from referral_service.adapters.rest_hook import NotDelivered, post_bundle
from referral_service.fhir import subscriptions as shapes
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.jobs import Job, RetryLater
from referral_service.services.tasks import TaskChanged

_BATCH = 100


def task_changed(uow: Any, event: TaskChanged) -> None:
    """Record the change for each Subscription of the sender that follows this referral."""
    following = uow.subscriptions.following(event.sender, event.referral_id)
    if not following:
        return
    task = uow.tasks.for_referral(event.referral_id)
    for subscription in following:
        number = uow.subscriptions.record_event(
            subscription.id,
            referral_id=event.referral_id,
            task_id=task.id,
            task=task.resource,
            at=event.at,
        )
        if subscription.status != "error":
            # also when `requested`: its handshake may commit before this transaction does,
            # and the job then finds it active (one still requested leaves the job waiting)
            jobs.notify_subscription(uow, subscription.id, number, event.at)


def _url(row: SubscriptionRow) -> str:
    return f"{row.base_url}/Subscription/{row.id}"


def _send(row: SubscriptionRow, bundle: dict[str, Any]) -> None:
    post_bundle(
        row.endpoint,
        bundle,
        headers=tuple(row.resource.get("channel", {}).get("header", ())),
        timeout=row.timeout_seconds,
    )


def _current(runtime: Dependencies, job: Job) -> SubscriptionRow | None:
    with runtime.unit_of_work(read_only=True) as uow:
        return uow.subscriptions.get(job.payload["subscription"])


def handshake(runtime: Dependencies, job: Job) -> str:
    """The `subscription-handshake` job: active when the endpoint answers 2xx, else error (the
    referrer fixes its endpoint and PUTs the Subscription again)."""
    row = _current(runtime, job)
    if row is None or row.status != "requested":
        return "skipped (no Subscription awaiting a handshake)"
    now = runtime.now()
    status = shapes.status_parameters(
        _url(row), status="requested", kind="handshake", events_since_start=row.events_since_start
    )
    try:
        _send(row, shapes.notification_bundle(status, _url(row), now))
    except NotDelivered as exc:
        with runtime.unit_of_work() as uow:
            uow.subscriptions.set_status(row.id, "error", now, f"handshake failed: {exc}")
        return f"handshake failed ({exc}); Subscription error"
    with runtime.unit_of_work() as uow:
        current = uow.subscriptions.get(row.id)
        if current is None or current.status != "requested":
            return "skipped (the Subscription changed meanwhile)"
        uow.subscriptions.set_status(row.id, "active", now)
        uow.subscriptions.sent(row.id, now)
        jobs.notify_subscription(uow, row.id, None, now)
        if row.heartbeat_seconds:
            jobs.heartbeat_subscription(uow, row.id, row.heartbeat_seconds, now)
    return "handshake acknowledged; Subscription active"


def notify(runtime: Dependencies, job: Job) -> str:
    """The `subscription-notify` job: every undelivered event, oldest first, one notification
    each; the first refusal stops it (RetryLater: the worker backs off)."""
    sent = 0
    while True:
        row = _current(runtime, job)
        if row is None:
            return "skipped (Subscription deleted)"
        if row.status != "active":
            return f"{sent} sent; waiting (Subscription {row.status})"
        with runtime.unit_of_work(read_only=True) as uow:
            waiting = uow.subscriptions.events_after(row.id, row.delivered_through, _BATCH)
        if not waiting:
            return f"{sent} sent"
        for event in waiting:
            _deliver(runtime, row, event)
            sent += 1


def _deliver(runtime: Dependencies, row: SubscriptionRow, event: Any) -> None:
    now = runtime.now()
    one = shapes.Event(event.number, event.occurred_at, event.task_id, event.task)
    status = shapes.status_parameters(
        _url(row),
        status="active",
        kind="event-notification",
        events_since_start=event.number,
        events=(one,),
        base=row.base_url,
        content=row.content,
    )
    bundle = shapes.notification_bundle(
        status, _url(row), now, events=(one,), base=row.base_url, content=row.content
    )
    try:
        _send(row, bundle)
    except NotDelivered as exc:
        raise RetryLater(f"event {event.number} not delivered: {exc}") from exc
    with runtime.unit_of_work() as uow:
        uow.subscriptions.delivered(row.id, event.number, now)


def heartbeat(runtime: Dependencies, job: Job) -> str:
    """The `subscription-heartbeat` job: a heartbeat when nothing was sent for a period, then
    the next check; the chain ends when the Subscription is gone or not active."""
    row = _current(runtime, job)
    if row is None or row.status != "active" or not row.heartbeat_seconds:
        return "skipped (no active Subscription with a heartbeat)"
    now = runtime.now()
    period = timedelta(seconds=row.heartbeat_seconds)
    result = "not due (sent recently)"
    if row.last_sent_at is None or now - row.last_sent_at >= period * 0.9:
        status = shapes.status_parameters(
            _url(row), status="active", kind="heartbeat", events_since_start=row.events_since_start
        )
        try:
            _send(row, shapes.notification_bundle(status, _url(row), now))
            result = "heartbeat sent"
        except NotDelivered as exc:
            result = f"heartbeat not delivered ({exc})"
    with runtime.unit_of_work() as uow:
        if result == "heartbeat sent":
            uow.subscriptions.sent(row.id, now)
        jobs.heartbeat_subscription(uow, row.id, row.heartbeat_seconds, now)
    return result


def gave_up(uow: Any, job: Job, error: str, now: Any) -> None:
    """A notify job spent its attempts: the Subscription is `error` (in the transaction that
    fails the job) until its owner PUTs it back to requested."""
    subscription_id = job.payload.get("subscription")
    row = uow.subscriptions.get(subscription_id) if subscription_id else None
    if row is not None and row.status == "active":
        uow.subscriptions.set_status(
            row.id, "error", now, f"delivery failed after {job.attempts} attempts: {error[:200]}"
        )
