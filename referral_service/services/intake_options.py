"""What intake needs to know to queue work: attempts, the source, and the evaluation job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from referral_service.adapters.db import outbox


@dataclass(frozen=True)
class IntakeOptions:
    max_attempts: int
    source: str = "direct"


def enqueue_evaluation(
    conn: Connection, referral_id: str, version: int, now: datetime, options: IntakeOptions
) -> None:
    outbox.enqueue(
        conn,
        "evaluate",
        now=now,
        max_attempts=options.max_attempts,
        referral_id=referral_id,
        payload={"version": version},
        dedupe_key=f"evaluate:{referral_id}:{version}",
    )
