"""Audit rows (`audit_events`): append one, read one, search by date, entity and agent."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.sql.elements import ColumnElement

from referral_service.adapters.db.tables import audit_events


@dataclass(frozen=True)
class AuditRow:
    id: str
    recorded: datetime
    action: str  # C R U D E
    subtype: str
    outcome: str  # 0 4 8 12
    agent: str
    source_ip: str | None
    entity: str | None
    detail: str | None


@dataclass(frozen=True)
class AuditQuery:
    """`filters`: the search's conditions (adapters/db/search.py AUDIT_EVENT), all to hold."""

    filters: tuple[ColumnElement[bool], ...] = ()
    count: int = 20
    offset: int = 0


_ADD = insert(audit_events)  # built once: every job's attempt writes one


def add(conn: Connection, row: AuditRow) -> None:
    conn.execute(_ADD, asdict(row))


def get(conn: Connection, audit_id: str) -> AuditRow | None:
    found = conn.execute(select(audit_events).where(audit_events.c.id == audit_id)).first()
    return AuditRow(**found._mapping) if found else None


def search(conn: Connection, query: AuditQuery) -> tuple[list[AuditRow], int]:
    """Newest first, a page at a time, with the total count of matches."""
    conditions = list(query.filters)
    total = conn.execute(
        select(func.count()).select_from(audit_events).where(*conditions)
    ).scalar_one()
    rows = conn.execute(
        select(audit_events)
        .where(*conditions)
        .order_by(audit_events.c.recorded.desc(), audit_events.c.id)
        .limit(query.count)
        .offset(query.offset)
    ).all()
    return [AuditRow(**row._mapping) for row in rows], int(total)
