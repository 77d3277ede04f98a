"""CDS Hooks rows: the cards issued (`cds_cards`) and the feedback on them (`cds_feedback`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from referral_service.adapters.db.engine import SKIPPING_INSERTS
from referral_service.adapters.db.tables import cds_cards, cds_feedback


@dataclass(frozen=True)
class IssuedCard:
    uuid: str
    service_id: str
    topic: str
    indicator: str
    issued_at: datetime


@dataclass(frozen=True)
class FeedbackRow:
    card_uuid: str
    service_id: str
    outcome: str
    override_reason_system: str | None
    override_reason_code: str | None
    outcome_at: datetime
    received_at: datetime


def add_cards(conn: Connection, cards: Iterable[IssuedCard]) -> None:
    """Record cards; a card already recorded (the EHR repeated the call) is kept as it was."""
    rows = [asdict(c) for c in cards]
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect in SKIPPING_INSERTS:
        query = SKIPPING_INSERTS[dialect](cds_cards).on_conflict_do_nothing(index_elements=["uuid"])
        conn.execute(query, rows)
        return
    for row in rows:
        with contextlib.suppress(IntegrityError), conn.begin_nested():
            conn.execute(insert(cds_cards), row)


def issued_by(conn: Connection, service_id: str, uuids: Iterable[str]) -> set[str]:
    """Which of these card ids this service issued."""
    wanted = list(set(uuids))
    query = select(cds_cards.c.uuid).where(
        cds_cards.c.service_id == service_id, cds_cards.c.uuid.in_(wanted)
    )
    return {row.uuid for row in conn.execute(query)}


def add_feedback(conn: Connection, rows: Iterable[FeedbackRow]) -> None:
    values = [asdict(r) for r in rows]
    if values:
        conn.execute(insert(cds_feedback), values)


def feedback_on(conn: Connection, card_uuid: str) -> list[FeedbackRow]:
    query = select(cds_feedback).where(cds_feedback.c.card_uuid == card_uuid)
    rows = conn.execute(query.order_by(cds_feedback.c.id)).all()
    return [FeedbackRow(**{k: v for k, v in row._mapping.items() if k != "id"}) for row in rows]
