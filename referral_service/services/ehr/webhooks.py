"""EHR notifications: recorded durably before the 202 (event row + outbox job, one transaction),
then worked off by the worker, which does every EHR read.

Exactly-once effect rests on database keys: a notification's dedupe key (subscription + event
numbers, or resource + version) is unique in webhook_events, so a replay is answered 202 and
recorded once; what a notification leads to is keyed again further in (reconciliation.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.unit_of_work import KeyTaken
from referral_service.adapters.ehr.errors import EhrUnavailable
from referral_service.fhir.control_characters import forbid_in_json
from referral_service.fhir.notifications import (
    Notification,
    digest,
    parse_notification,
    split_reference,
    version_stamp,
)
from referral_service.observability import metrics
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.ehr import reconciliation
from referral_service.services.jobs import Job, RetryLater

log = logging.getLogger(__name__)
PING = "rest-hook-ping"
RESOURCE = "rest-hook-resource"


@dataclass(frozen=True)
class Recorded:
    event_id: int | None
    duplicate: bool


def record_notification(
    runtime: Dependencies,
    notification: Notification,
    body: dict[str, Any],
    now: datetime,
    settings: Any,
) -> Recorded:
    """A Backport notification. Heartbeats with the same count collapse into one row."""
    return _record(
        runtime,
        kind=notification.kind,
        dedupe_key=notification.dedupe_key(),
        subscription=notification.subscription,
        event_number=max((e.number for e in notification.events), default=None),
        body=body,
        now=now,
        settings=settings,
    )


def record_resource(
    runtime: Dependencies, resource: dict[str, Any], now: datetime, settings: Any
) -> Recorded:
    """A classic rest-hook delivery of the resource itself: one row per resource version."""
    stamp = version_stamp(resource)
    version = (
        stamp.get("versionId")
        or stamp.get("lastUpdated")
        or digest(json.dumps(resource, sort_keys=True))
    )
    reference = f"{resource['resourceType']}/{resource.get('id')}"
    return _record(
        runtime,
        kind=RESOURCE,
        dedupe_key=f"{RESOURCE}:{digest(reference)}:{digest(version)}",
        subscription=None,
        event_number=None,
        body=resource,
        now=now,
        settings=settings,
    )


def record_ping(runtime: Dependencies, now: datetime, settings: Any) -> Recorded:
    """A classic rest-hook ping without content: the worker searches what changed."""
    return _record(
        runtime,
        kind=PING,
        dedupe_key=None,
        subscription=None,
        event_number=None,
        body=None,
        now=now,
        settings=settings,
    )


def _record(
    runtime: Dependencies, *, dedupe_key: str | None, now: datetime, settings: Any, **row: Any
) -> Recorded:
    try:
        with runtime.unit_of_work() as uow:
            event_id = uow.notifications.add(dedupe_key=dedupe_key, received_at=now, **row)
            jobs.take_webhook_event(uow, event_id, now)
            if settings.uses_ehr:
                jobs.reconcile_periodically(uow, now, minutes=settings.reconcile_minutes)
    except KeyTaken:
        return Recorded(None, duplicate=True)  # the same notification, already recorded
    return Recorded(event_id, duplicate=False)


# --- the worker side ---------------------------------------------------------------------------


def process_event(runtime: Dependencies, job: Job) -> str:
    """The `webhook-event` job: what one recorded notification asks of the EHR."""
    with runtime.unit_of_work(read_only=True) as uow:
        row = uow.notifications.get(job.payload["event"])
    if row is None:
        return "skipped (event gone)"
    # Recorded before the edge refused control characters: refused here (dead-lettered), not
    # retried for ever against a database that cannot store them.
    forbid_in_json(row["body"])
    try:
        if row["kind"] == PING:
            return reconciliation.sync_changes(runtime, reason="ping")
        if row["kind"] == RESOURCE:
            return _take_delivered(runtime, row["body"])
        return _process_notification(runtime, parse_notification(row["body"]))
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc


def _take_delivered(runtime: Dependencies, resource: dict[str, Any]) -> str:
    if resource.get("resourceType") != "ServiceRequest":
        metrics.webhook_event("ignored")
        return "ignored (not a ServiceRequest)"
    return reconciliation.take_service_request(runtime, resource)


def _process_notification(runtime: Dependencies, notification: Notification) -> str:
    gap = _note_progress(runtime, notification)
    if notification.content == "empty" and notification.events:
        outcomes = [reconciliation.sync_changes(runtime, reason="empty")]
    else:
        outcomes = [_take_event(runtime, notification, event) for event in notification.events]
    if gap:
        metrics.webhook_event("gap")
        log.info(
            "event gap; reconciling", extra={"subscription_key": digest(notification.subscription)}
        )
        outcomes.append(reconciliation.sync_changes(runtime, reason="gap"))
    return "; ".join(outcomes) or notification.kind


def _take_event(runtime: Dependencies, notification: Notification, event: Any) -> str:
    parts = split_reference(event.focus)
    if parts is None or parts[0] != "ServiceRequest":
        metrics.webhook_event("ignored")
        return "ignored (focus is not a ServiceRequest)"
    delivered = [
        r for r in notification.resources if (r.get("resourceType"), str(r.get("id"))) == parts
    ]
    if delivered:
        return reconciliation.take_service_request(runtime, delivered[0], notification.resources)
    if runtime.ehr_client is None:
        return "skipped (no EHR configured to read the focus from)"
    return reconciliation.read_and_take(runtime, parts[1], notification.resources)


def _note_progress(runtime: Dependencies, notification: Notification) -> bool:
    """Record how far this subscription's events have come; True when some never arrived."""
    key = f"webhook-sub:{digest(notification.subscription)}"
    numbers = [event.number for event in notification.events]
    with runtime.unit_of_work() as uow:
        seen = int((uow.state.read(key, for_update=True) or {}).get("events", -1))
        gap = _has_gap(notification, numbers, seen)
        reached = max(numbers + [notification.events_since_start or 0, seen])
        if reached != seen:
            uow.state.write(key, {"events": reached}, runtime.now())
    return gap


def _has_gap(notification: Notification, numbers: list[int], seen: int) -> bool:
    if seen < 0:
        return False  # the first word from this subscription sets the baseline
    if numbers:
        return min(numbers) > seen + 1
    return (notification.events_since_start or 0) > seen
