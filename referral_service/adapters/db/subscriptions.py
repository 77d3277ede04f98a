"""Referrers' Subscriptions and their numbered events (SQL for the `subscriptions` repository).

An event's number comes from the Subscription's own counter, raised by an UPDATE in the Task
change's transaction: the row lock that UPDATE takes orders concurrent writers, so numbers are
gapless and follow commit order per Subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update

from referral_service.adapters.db.tables import subscription_events, subscriptions

LIVE = ("requested", "active", "error")  # states that still record events


# Built once: every Task change asks it (adapters/db/referrals.py says why).
_FOLLOWING = (
    select(subscriptions)
    .where(
        subscriptions.c.sender == bindparam("sender"),
        subscriptions.c.status.in_(LIVE),
        or_(
            subscriptions.c.referral_id.is_(None),
            subscriptions.c.referral_id == bindparam("referral_id"),
        ),
    )
    .order_by(subscriptions.c.id)
)


@dataclass(frozen=True)
class SubscriptionRow:
    id: str
    sender: str
    status: str
    referral_id: str | None
    endpoint: str
    base_url: str
    content: str
    heartbeat_seconds: int | None
    timeout_seconds: int
    events_since_start: int
    delivered_through: int
    error: str | None
    resource: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_sent_at: datetime | None


@dataclass(frozen=True)
class SubscriptionEvent:
    number: int
    referral_id: str
    task_id: str
    task: dict[str, Any]
    occurred_at: datetime


def _row(row: Any) -> SubscriptionRow:
    return SubscriptionRow(**{c.name: row._mapping[c.name] for c in subscriptions.columns})


class Subscriptions:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, **values: Any) -> None:
        self._conn.execute(insert(subscriptions).values(**values))

    def get(self, subscription_id: str, sender: str | None = None) -> SubscriptionRow | None:
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        if sender is not None:
            query = query.where(subscriptions.c.sender == sender)
        row = self._conn.execute(query).first()
        return None if row is None else _row(row)

    def of_sender(self, sender: str | None) -> list[SubscriptionRow]:
        query = select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id)
        if sender is not None:
            query = query.where(subscriptions.c.sender == sender)
        return [_row(row) for row in self._conn.execute(query)]

    def following(self, sender: str, referral_id: str) -> list[SubscriptionRow]:
        """The live Subscriptions of `sender` that cover this referral."""
        rows = self._conn.execute(_FOLLOWING, {"sender": sender, "referral_id": referral_id})
        return [_row(row) for row in rows]

    def record_event(
        self,
        subscription_id: str,
        *,
        referral_id: str,
        task_id: str,
        task: dict[str, Any],
        at: datetime,
    ) -> int:
        """The next event of this Subscription; its number."""
        self._conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(events_since_start=subscriptions.c.events_since_start + 1)
        )
        number = self._conn.execute(
            select(subscriptions.c.events_since_start).where(subscriptions.c.id == subscription_id)
        ).scalar_one()
        self._conn.execute(
            insert(subscription_events).values(
                subscription_id=subscription_id,
                event_number=number,
                referral_id=referral_id,
                task_id=task_id,
                task=task,
                occurred_at=at,
            )
        )
        return int(number)

    def events_after(
        self, subscription_id: str, after: int, limit: int = 100
    ) -> list[SubscriptionEvent]:
        query = (
            select(subscription_events)
            .where(
                subscription_events.c.subscription_id == subscription_id,
                subscription_events.c.event_number > after,
            )
            .order_by(subscription_events.c.event_number)
            .limit(limit)
        )
        return [
            SubscriptionEvent(
                row.event_number, row.referral_id, row.task_id, row.task, row.occurred_at
            )
            for row in self._conn.execute(query)
        ]

    def replace(self, subscription_id: str, **values: Any) -> None:
        self._conn.execute(
            update(subscriptions).where(subscriptions.c.id == subscription_id).values(**values)
        )

    def set_status(
        self, subscription_id: str, status: str, now: datetime, error: str | None = None
    ) -> None:
        self._conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(status=status, error=error, updated_at=now)
        )

    def delivered(self, subscription_id: str, through: int, now: datetime) -> None:
        """The endpoint acknowledged every event up to `through` (never moves backwards)."""
        self._conn.execute(
            update(subscriptions)
            .where(
                subscriptions.c.id == subscription_id,
                subscriptions.c.delivered_through < through,
            )
            .values(delivered_through=through)
        )
        self.sent(subscription_id, now)

    def sent(self, subscription_id: str, now: datetime) -> None:
        self._conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(last_sent_at=now)
        )

    def remove(self, subscription_id: str) -> None:
        self._conn.execute(
            delete(subscription_events).where(
                subscription_events.c.subscription_id == subscription_id
            )
        )
        self._conn.execute(delete(subscriptions).where(subscriptions.c.id == subscription_id))
