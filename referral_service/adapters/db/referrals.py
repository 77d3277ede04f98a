"""Referral, Task and event rows: the queries the service layer needs, on a caller's connection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from referral_service.adapters.db.tables import (
    referral_events,
    referral_identifiers,
    referral_versions,
    referrals,
    tasks,
)
from referral_service.domain.decision import Decision
from referral_service.domain.lifecycle import TaskState


@dataclass(frozen=True)
class ReferralRow:
    id: str
    sender: str
    version_id: int
    status: str
    priority: str | None
    patient_ref: str | None
    source: str
    resource: dict[str, Any]
    supporting: list[dict[str, Any]]
    decision: Decision | None
    authored_on: datetime | None
    received_at: datetime
    last_updated: datetime


@dataclass(frozen=True)
class ReferralHead:
    """A referral without its resources: what Task writes and version checks need (the raw
    ServiceRequest and its supporting resources are most of a row's bytes)."""

    id: str
    version_id: int
    patient_ref: str | None
    source: str
    decision: Decision | None
    received_at: datetime


@dataclass(frozen=True)
class TaskRow:
    id: str
    referral_id: str
    sender: str
    version_id: int
    state: TaskState
    resource: dict[str, Any]
    last_updated: datetime


def _decision(row: Any) -> Decision | None:
    return Decision.from_dict(row["decision"]) if row["decision"] else None


def _referral(row: Any) -> ReferralRow:
    return ReferralRow(
        row["id"],
        row["sender"],
        row["version_id"],
        row["status"],
        row["priority"],
        row["patient_ref"],
        row["source"],
        row["resource"],
        row["supporting"],
        _decision(row),
        row["authored_on"],
        row["received_at"],
        row["last_updated"],
    )


def _task(row: Any) -> TaskRow:
    return TaskRow(
        row["id"],
        row["referral_id"],
        row["sender"],
        row["version_id"],
        TaskState(row["status"], row["business_status"]),
        row["resource"],
        row["last_updated"],
    )


def insert_referral(conn: Connection, **values: Any) -> None:
    conn.execute(insert(referrals), values)
    conn.execute(
        insert(referral_versions),
        dict(
            referral_id=values["id"],
            version_id=values["version_id"],
            resource=values["resource"],
            recorded_at=values["last_updated"],
        ),
    )


def claim_identifiers(
    conn: Connection, sender: str, referral_id: str, identifiers: Iterable[tuple[str, str]]
) -> None:
    """Raises IntegrityError when another referral of this sender holds one of them."""
    owned = {
        (row.system, row.value)
        for row in conn.execute(
            select(referral_identifiers).where(referral_identifiers.c.referral_id == referral_id)
        )
    }
    for system, value in identifiers:
        if (system, value) not in owned:
            conn.execute(
                insert(referral_identifiers),
                dict(sender=sender, system=system, value=value, referral_id=referral_id),
            )


def claim_new_identifiers(
    conn: Connection, sender: str, referral_id: str, identifiers: list[tuple[str, str]]
) -> None:
    """A new referral's identifiers in one statement; IntegrityError when one is taken."""
    if identifiers:
        conn.execute(
            insert(referral_identifiers),
            [
                {"sender": sender, "system": system, "value": value, "referral_id": referral_id}
                for system, value in dict.fromkeys(identifiers)
            ],
        )


def find_by_identifiers(
    conn: Connection, sender: str, identifiers: Iterable[tuple[str, str]]
) -> str | None:
    for system, value in identifiers:
        found = conn.execute(
            select(referral_identifiers.c.referral_id).where(
                referral_identifiers.c.sender == sender,
                referral_identifiers.c.system == system,
                referral_identifiers.c.value == value,
            )
        ).scalar()
        if found:
            return str(found)
    return None


# The statements every evaluation and booking runs, built once: building a SELECT and its
# cache key costs about a quarter of a millisecond each time (bench/booking.py's worker CPU).
_REFERRAL = select(referrals).where(referrals.c.id == bindparam("referral_id"))
_REFERRAL_LOCKED = _REFERRAL.with_for_update()


def _locked(conn: Connection, for_update: bool) -> bool:
    return for_update and conn.dialect.name == "postgresql"


def get_referral(
    conn: Connection, referral_id: str, *, for_update: bool = False
) -> ReferralRow | None:
    query = _REFERRAL_LOCKED if _locked(conn, for_update) else _REFERRAL
    row = conn.execute(query, {"referral_id": referral_id}).mappings().first()
    return _referral(row) if row else None


_HEAD_COLUMNS = (
    referrals.c.id,
    referrals.c.version_id,
    referrals.c.patient_ref,
    referrals.c.source,
    referrals.c.decision,
    referrals.c.received_at,
)
_HEAD = select(*_HEAD_COLUMNS).where(referrals.c.id == bindparam("referral_id"))
_HEAD_LOCKED = _HEAD.with_for_update()


def get_referral_head(
    conn: Connection, referral_id: str, *, for_update: bool = False
) -> ReferralHead | None:
    query = _HEAD_LOCKED if _locked(conn, for_update) else _HEAD
    row = conn.execute(query, {"referral_id": referral_id}).mappings().first()
    return None if row is None else _head(row)


def _head(row: Any) -> ReferralHead:
    return ReferralHead(
        row["id"],
        row["version_id"],
        row["patient_ref"],
        row["source"],
        _decision(row),
        row["received_at"],
    )


# A referral with its Task in one statement (the evaluation's reads). Locked, both rows are:
# PostgreSQL then hands over the Task as it is once the referral's lock is granted, as a
# read after taking that lock would see it (the placer's Task changes take it first too).
_TASK_COLUMNS = tuple(column.label(f"task_{column.name}") for column in tasks.c)
_ON_TASK = tasks.c.referral_id == referrals.c.id
_WITH_TASK = select(referrals, *_TASK_COLUMNS).join(tasks, _ON_TASK)
_WITH_TASK = _WITH_TASK.where(referrals.c.id == bindparam("referral_id"))
_HEAD_WITH_TASK = select(*_HEAD_COLUMNS, *_TASK_COLUMNS).join(tasks, _ON_TASK)
_HEAD_WITH_TASK = _HEAD_WITH_TASK.where(referrals.c.id == bindparam("referral_id"))
_HEAD_WITH_TASK_LOCKED = _HEAD_WITH_TASK.with_for_update()


def _its_task(row: Any) -> TaskRow:
    return _task({column.name: row[f"task_{column.name}"] for column in tasks.c})


def get_referral_with_task(
    conn: Connection, referral_id: str
) -> tuple[ReferralRow, TaskRow] | None:
    """None when either is missing."""
    row = conn.execute(_WITH_TASK, {"referral_id": referral_id}).mappings().first()
    return None if row is None else (_referral(row), _its_task(row))


def get_head_with_task(
    conn: Connection, referral_id: str, *, for_update: bool = False
) -> tuple[ReferralHead, TaskRow] | None:
    """None when either is missing."""
    query = _HEAD_WITH_TASK_LOCKED if _locked(conn, for_update) else _HEAD_WITH_TASK
    row = conn.execute(query, {"referral_id": referral_id}).mappings().first()
    return None if row is None else (_head(row), _its_task(row))


def get_version(conn: Connection, referral_id: str, version_id: int) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(referral_versions).where(
                referral_versions.c.referral_id == referral_id,
                referral_versions.c.version_id == version_id,
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def list_versions(conn: Connection, referral_id: str) -> list[dict[str, Any]]:
    """Every stored version of a referral, newest first."""
    rows = conn.execute(
        select(referral_versions)
        .where(referral_versions.c.referral_id == referral_id)
        .order_by(referral_versions.c.version_id.desc())
    ).mappings()
    return [dict(row) for row in rows]


def save_new_version(conn: Connection, referral_id: str, version_id: int, **values: Any) -> None:
    conn.execute(
        update(referrals)
        .where(referrals.c.id == referral_id)
        .values(version_id=version_id, **values)
    )
    conn.execute(
        insert(referral_versions),
        dict(
            referral_id=referral_id,
            version_id=version_id,
            resource=values["resource"],
            recorded_at=values["last_updated"],
        ),
    )


_RECORD_DECISION = (
    update(referrals)
    .where(referrals.c.id == bindparam("referral_id"))
    .values(decision=bindparam("new_decision"), decision_outcome=bindparam("outcome"))
)


def record_decision(conn: Connection, referral_id: str, decision: Decision) -> None:
    conn.execute(
        _RECORD_DECISION,
        {
            "referral_id": referral_id,
            "new_decision": decision.to_dict(),
            "outcome": decision.decision,
        },
    )


def search_referrals(
    conn: Connection, *, sender: str | None, filters: list[Any], count: int, offset: int
) -> tuple[list[ReferralRow], int]:
    conditions = list(filters)
    if sender is not None:
        conditions.append(referrals.c.sender == sender)
    total = conn.execute(select(func.count()).select_from(referrals).where(*conditions)).scalar()
    rows = conn.execute(
        select(referrals)
        .where(*conditions)
        .order_by(referrals.c.last_updated.desc(), referrals.c.id)
        .limit(count)
        .offset(offset)
    ).mappings()
    return [_referral(row) for row in rows], int(total or 0)


def referral_ids_in(conn: Connection, business_statuses: Iterable[str]) -> list[str]:
    """The referrals whose Task has one of these business statuses, oldest first."""
    rows = conn.execute(
        select(tasks.c.referral_id)
        .join(referrals, referrals.c.id == tasks.c.referral_id)
        .where(tasks.c.business_status.in_(list(business_statuses)))
        .order_by(referrals.c.received_at, referrals.c.id)
    )
    return [str(row[0]) for row in rows]


def insert_task(conn: Connection, **values: Any) -> None:
    conn.execute(insert(tasks), values)


_TASK_FOR_REFERRAL = select(tasks).where(tasks.c.referral_id == bindparam("referral_id"))
_TASK = select(tasks).where(tasks.c.id == bindparam("task_id"))
_SAVE_TASK = (
    update(tasks)
    .where(tasks.c.id == bindparam("task_id"))
    .values(
        status=bindparam("new_status"),
        business_status=bindparam("new_business_status"),
        resource=bindparam("new_resource"),
        version_id=bindparam("new_version_id"),
        last_updated=bindparam("new_last_updated"),
    )
)


def get_task_for_referral(conn: Connection, referral_id: str) -> TaskRow | None:
    row = conn.execute(_TASK_FOR_REFERRAL, {"referral_id": referral_id}).mappings().first()
    return _task(row) if row else None


def get_task(conn: Connection, task_id: str) -> TaskRow | None:
    row = conn.execute(_TASK, {"task_id": task_id}).mappings().first()
    return _task(row) if row else None


def save_task(
    conn: Connection,
    task_id: str,
    state: TaskState,
    resource: dict[str, Any],
    version_id: int,
    now: datetime,
) -> None:
    conn.execute(
        _SAVE_TASK,
        {
            "task_id": task_id,
            "new_status": state.status,
            "new_business_status": state.business_status,
            "new_resource": resource,
            "new_version_id": version_id,
            "new_last_updated": now,
        },
    )


def search_tasks(
    conn: Connection, *, sender: str | None, filters: list[Any], count: int, offset: int
) -> tuple[list[TaskRow], int]:
    conditions = list(filters)
    if sender is not None:
        conditions.append(tasks.c.sender == sender)
    total = conn.execute(select(func.count()).select_from(tasks).where(*conditions)).scalar()
    rows = conn.execute(
        select(tasks)
        .where(*conditions)
        .order_by(tasks.c.last_updated.desc(), tasks.c.id)
        .limit(count)
        .offset(offset)
    ).mappings()
    return [_task(row) for row in rows], int(total or 0)


# inline(): no RETURNING of the new id (nobody reads it), so it can be pipelined; built once
_ADD_EVENT = insert(referral_events).inline()


def add_event(conn: Connection, referral_id: str, kind: str, now: datetime, **detail: Any) -> None:
    conn.execute(_ADD_EVENT, dict(referral_id=referral_id, at=now, kind=kind, detail=detail))


def list_events(conn: Connection, referral_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(referral_events)
        .where(referral_events.c.referral_id == referral_id)
        .order_by(referral_events.c.id)
    ).mappings()
    return [
        {"at": row["at"].isoformat(), "kind": row["kind"], "detail": row["detail"]} for row in rows
    ]
