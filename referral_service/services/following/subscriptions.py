"""A referrer's Subscriptions to its referrals' Task changes: create (then the handshake, from
the worker), read, list, delete, `$status`, and recovery from `error` by a PUT that asks again
(status requested: a new handshake, then everything still undelivered, in order).

A sender sees and follows only its own: another sender's Subscription or referral is unknown.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from referral_service.adapters.db.subscriptions import SubscriptionRow
from referral_service.domain.errors import NotKnown, Unacceptable
from referral_service.fhir import subscriptions as shapes
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies


def _resource(row: SubscriptionRow, sender: str | None) -> dict[str, Any]:
    """Its headers (the receiver's credentials) only to its owner, never to staff."""
    asked = shapes.asked_of(row.resource)
    if sender is None:
        asked = dataclasses.replace(asked, headers=())
    return shapes.subscription_resource(
        row.id, asked, status=row.status, error=row.error, updated=row.updated_at
    )


def _check_referral(uow: Any, sender: str, asked: shapes.SubscriptionRequest) -> None:
    if asked.referral_id is None:
        return
    referral = uow.referrals.get(asked.referral_id)
    if referral is None or referral.sender != sender:
        raise Unacceptable(
            f"the filter names ServiceRequest/{asked.referral_id}, not a referral of yours",
            "Subscription.criteria",
        )


def create(
    runtime: Dependencies, sender: str, resource: dict[str, Any], base_url: str
) -> dict[str, Any]:
    """Store a Subscription `requested` and queue its handshake."""
    asked = shapes.read_subscription(resource, runtime.settings.subscription_allowed_endpoints)
    now = runtime.now()
    subscription_id = str(uuid.uuid4())
    with runtime.unit_of_work() as uow:
        _check_referral(uow, sender, asked)
        stored = shapes.subscription_resource(
            subscription_id, asked, status="requested", error=None, updated=now
        )
        uow.subscriptions.add(
            id=subscription_id,
            sender=sender,
            status="requested",
            referral_id=asked.referral_id,
            endpoint=asked.endpoint,
            base_url=base_url,
            content=asked.content,
            heartbeat_seconds=asked.heartbeat_seconds,
            timeout_seconds=asked.timeout_seconds,
            events_since_start=0,
            delivered_through=0,
            error=None,
            resource=stored,
            created_at=now,
            updated_at=now,
        )
        jobs.handshake_subscription(uow, subscription_id, now)
    return stored


def update(
    runtime: Dependencies, sender: str, subscription_id: str, resource: dict[str, Any]
) -> dict[str, Any]:
    """A PUT of one's Subscription: the same topic and filter, perhaps a new endpoint, payload
    or heartbeat; it goes back to `requested` (a new handshake), which is how one in `error`
    is recovered. Its events and their numbers are kept; the undelivered ones follow."""
    if resource.get("id") not in (None, subscription_id):
        raise Unacceptable("the body's id is not the one in the URL", "Subscription.id")
    asked = shapes.read_subscription(resource, runtime.settings.subscription_allowed_endpoints)
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        row = uow.subscriptions.get(subscription_id, sender)
        if row is None:
            raise NotKnown(f"no Subscription/{subscription_id}")
        if asked.referral_id != row.referral_id:
            raise Unacceptable("a Subscription's filter cannot change", "Subscription.criteria")
        stored = shapes.subscription_resource(
            subscription_id, asked, status="requested", error=None, updated=now
        )
        uow.subscriptions.replace(
            subscription_id,
            endpoint=asked.endpoint,
            content=asked.content,
            heartbeat_seconds=asked.heartbeat_seconds,
            timeout_seconds=asked.timeout_seconds,
            resource=stored,
            status="requested",
            error=None,
            updated_at=now,
        )
        jobs.handshake_subscription(uow, subscription_id, now)
    return stored


def read(runtime: Dependencies, sender: str | None, subscription_id: str) -> dict[str, Any]:
    with runtime.unit_of_work(read_only=True) as uow:
        row = uow.subscriptions.get(subscription_id, sender)
    if row is None:
        raise NotKnown(f"no Subscription/{subscription_id}")
    return _resource(row, sender)


def search(runtime: Dependencies, sender: str | None) -> list[dict[str, Any]]:
    with runtime.unit_of_work(read_only=True) as uow:
        return [_resource(row, sender) for row in uow.subscriptions.of_sender(sender)]


def delete(runtime: Dependencies, sender: str, subscription_id: str) -> None:
    """Gone at once: its queued jobs find nothing and end."""
    with runtime.unit_of_work() as uow:
        if uow.subscriptions.get(subscription_id, sender) is None:
            raise NotKnown(f"no Subscription/{subscription_id}")
        uow.subscriptions.remove(subscription_id)


def status(runtime: Dependencies, sender: str | None, subscription_id: str) -> dict[str, Any]:
    """`$status`: the SubscriptionStatus (query-status) of one Subscription."""
    with runtime.unit_of_work(read_only=True) as uow:
        row = uow.subscriptions.get(subscription_id, sender)
    if row is None:
        raise NotKnown(f"no Subscription/{subscription_id}")
    return shapes.status_parameters(
        f"{row.base_url}/Subscription/{row.id}",
        status=row.status,
        kind="query-status",
        events_since_start=row.events_since_start,
        error=row.error,
    )
