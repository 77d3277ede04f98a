"""Rows of `received_messages`: the response each FHIR message got, by sender and message id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from referral_service.adapters.db.tables import received_messages


class ReceivedMessages:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def response_to(self, sender: str, message_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            select(received_messages.c.response).where(
                received_messages.c.sender == sender,
                received_messages.c.message_id == message_id,
            )
        ).first()
        return dict(row.response) if row is not None else None

    def record(
        self, sender: str, message_id: str, code: str, response: dict[str, Any], now: datetime
    ) -> None:
        """Raises KeyTaken when the message is already recorded (a concurrent resend)."""
        self._conn.execute(
            insert(received_messages).values(
                sender=sender,
                message_id=message_id,
                response_code=code,
                response=response,
                received_at=now,
            )
        )
