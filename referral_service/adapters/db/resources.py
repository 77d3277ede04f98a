"""Supporting resources pushed one by one (BSeR REST push): rows of stored_resources and the
identifiers each sender has claimed for them, on a caller's connection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update

from referral_service.adapters.db.tables import (
    referrals,
    stored_resource_identifiers,
    stored_resources,
    tasks,
)


@dataclass(frozen=True)
class StoredResource:
    resource_type: str
    id: str
    sender: str
    version_id: int
    resource: dict[str, Any]
    patient_ref: str | None
    last_updated: datetime


def _row(row: Any) -> StoredResource:
    return StoredResource(
        row["resource_type"],
        row["id"],
        row["sender"],
        row["version_id"],
        row["resource"],
        row["patient_ref"],
        row["last_updated"],
    )


def get(
    conn: Connection, resource_type: str, resource_id: str, *, for_update: bool = False
) -> StoredResource | None:
    query = select(stored_resources).where(
        stored_resources.c.resource_type == resource_type, stored_resources.c.id == resource_id
    )
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return _row(row) if row else None


def insert_resource(conn: Connection, stored: StoredResource) -> None:
    conn.execute(
        insert(stored_resources),
        dict(
            resource_type=stored.resource_type,
            id=stored.id,
            sender=stored.sender,
            version_id=stored.version_id,
            resource=stored.resource,
            patient_ref=stored.patient_ref,
            last_updated=stored.last_updated,
        ),
    )


def save_version(conn: Connection, stored: StoredResource) -> None:
    conn.execute(
        update(stored_resources)
        .where(
            stored_resources.c.resource_type == stored.resource_type,
            stored_resources.c.id == stored.id,
        )
        .values(
            version_id=stored.version_id,
            resource=stored.resource,
            patient_ref=stored.patient_ref,
            last_updated=stored.last_updated,
        )
    )


def claim_identifiers(
    conn: Connection,
    sender: str,
    resource_type: str,
    resource_id: str,
    identifiers: Iterable[tuple[str, str]],
) -> None:
    """The identifiers a resource holds now. The primary key (sender, type, system, value)
    raises IntegrityError when another resource of this sender already holds one: that is
    what makes conditional create safe under concurrent POSTs."""
    owned = stored_resource_identifiers.c
    conn.execute(
        delete(stored_resource_identifiers).where(
            owned.sender == sender,
            owned.resource_type == resource_type,
            owned.resource_id == resource_id,
        )
    )
    for system, value in dict.fromkeys(identifiers):
        conn.execute(
            insert(stored_resource_identifiers),
            dict(
                sender=sender,
                resource_type=resource_type,
                system=system,
                value=value,
                resource_id=resource_id,
            ),
        )


def find_by_identifiers(
    conn: Connection, sender: str, resource_type: str, wanted: Iterable[tuple[str, str]]
) -> StoredResource | None:
    """The sender's resource holding the first of `wanted` that one holds."""
    owned = stored_resource_identifiers.c
    for system, value in wanted:
        found = conn.execute(
            select(owned.resource_id).where(
                owned.sender == sender,
                owned.resource_type == resource_type,
                owned.system == system,
                owned.value == value,
            )
        ).scalar()
        if found:
            return get(conn, resource_type, str(found))
    return None


def search(
    conn: Connection,
    resource_type: str,
    sender: str | None,
    filters: list[Any],
    page: tuple[int, int],
) -> tuple[list[StoredResource], int]:
    """One page (count, offset) of matches, newest first, and the number of all matches."""
    column = stored_resources.c
    conditions: list[Any] = [column.resource_type == resource_type, *filters]
    if sender is not None:
        conditions.append(column.sender == sender)
    total = conn.execute(
        select(func.count()).select_from(stored_resources).where(*conditions)
    ).scalar()
    rows = conn.execute(
        select(stored_resources)
        .where(*conditions)
        .order_by(column.last_updated.desc(), column.id)
        .limit(page[0])
        .offset(page[1])
    ).mappings()
    return [_row(row) for row in rows], int(total or 0)


def holding(resource_type: str, identifier: tuple[str | None, str], sender: str | None) -> Any:
    """The ids of `resource_type` holding an identifier (a token search: system optional)."""
    system, value = identifier
    owned = stored_resource_identifiers.c
    query = select(owned.resource_id).where(
        owned.resource_type == resource_type, owned.value == value
    )
    if system:
        query = query.where(owned.system == system)
    if sender is not None:
        query = query.where(owned.sender == sender)
    return query


# Built once: every evaluation reads it (adapters/db/referrals.py says why).
_ABOUT_KEY = select(stored_resources).where(
    stored_resources.c.sender == bindparam("sender"),
    stored_resources.c.patient_ref == bindparam("patient_key"),
)
_ABOUT_PATIENT = select(stored_resources).where(
    stored_resources.c.sender == bindparam("sender"),
    or_(
        stored_resources.c.patient_ref == bindparam("patient_key"),
        (stored_resources.c.resource_type == "Patient")
        & (stored_resources.c.id == bindparam("key_id")),
    ),
)


def about_patient(conn: Connection, sender: str, patient_key: str) -> list[StoredResource]:
    """The sender's resources filed under one key: a patient (`Patient/x`, the Patient itself
    included), or a referral whose Patient is contained in it (`ServiceRequest/x`: its answers)."""
    kind, key_id = patient_key.split("/", 1)
    query = _ABOUT_PATIENT if kind == "Patient" else _ABOUT_KEY
    values = {"sender": sender, "patient_key": patient_key, "key_id": key_id}  # extras unread
    rows = conn.execute(query, values).mappings()
    return [_row(row) for row in rows]


def referrals_waiting_on(conn: Connection, sender: str, patient_key: str) -> list[str]:
    """The sender's active referrals about a patient (or the one referral a `ServiceRequest/x`
    key files answers under) that are on hold for data, or not yet decided (their evaluation
    may have read the data just before this write committed)."""
    kind, key_id = patient_key.split("/", 1)
    which = (
        referrals.c.id == key_id
        if kind == "ServiceRequest"
        else (referrals.c.patient_ref == patient_key)
    )
    query = (
        select(referrals.c.id)
        .join(tasks, tasks.c.referral_id == referrals.c.id)
        .where(
            referrals.c.sender == sender,
            referrals.c.status == "active",
            tasks.c.business_status.in_(("needs-information", "received")),
            which,
        )
    )
    return [str(referral_id) for referral_id in conn.execute(query).scalars()]
