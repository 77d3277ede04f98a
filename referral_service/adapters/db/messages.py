"""Rows of `received_messages`: the response each FHIR message got, by sender and message id,
with the digest of the message's content (a resend repeats it; another message does not)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from referral_service.adapters.db.tables import received_messages


@dataclass(frozen=True)
class Receipt:
    response: dict[str, Any]
    content_digest: str | None  # None: recorded before digests were kept


class ReceivedMessages:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def receipt(self, sender: str, message_id: str) -> Receipt | None:
        row = self._conn.execute(
            select(received_messages.c.response, received_messages.c.content_digest).where(
                received_messages.c.sender == sender,
                received_messages.c.message_id == message_id,
            )
        ).first()
        return Receipt(dict(row.response), row.content_digest) if row is not None else None

    def record(
        self,
        sender: str,
        message_id: str,
        code: str,
        response: dict[str, Any],
        now: datetime,
        content_digest: str,
    ) -> None:
        """Raises KeyTaken when the message is already recorded (a concurrent resend)."""
        self._conn.execute(
            insert(received_messages).values(
                sender=sender,
                message_id=message_id,
                response_code=code,
                response=response,
                received_at=now,
                content_digest=content_digest,
            )
        )
