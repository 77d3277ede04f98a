"""SQL for local scheduling and EHR booking mirrors: appointments rows and chair-cell claims."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from referral_service.domain.scheduling.slots import Interval

from .engine import SKIPPING_INSERTS
from .tables import appointments, chair_claims


def find_appointment(conn: Connection, referral_id: str) -> Mapping[str, Any] | None:
    """The referral's first visit (its series' other visits: `series_rows`)."""
    row = conn.execute(
        select(appointments)
        .where(appointments.c.referral_id == referral_id)
        .order_by(appointments.c.visit)
    ).first()
    return dict(row._mapping) if row is not None else None


_SERIES = (
    select(appointments)
    .where(appointments.c.referral_id == bindparam("referral_id"))
    .order_by(appointments.c.visit)
)  # built once: read by every booking (referrals.py says why)


def series_rows(conn: Connection, referral_id: str) -> list[dict[str, Any]]:
    """Every row of the referral, by visit (a repeat course due last)."""
    rows = conn.execute(_SERIES, {"referral_id": referral_id})
    return [dict(row._mapping) for row in rows]


LIVE = ("booked", "pending", "arrived", "fulfilled", "checked-in")


def live_between(conn: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Booked visits (any referral) starting in [start, end): the day loads the planner reads."""
    rows = conn.execute(
        select(appointments.c.chair_id, appointments.c.protocol, appointments.c.start)
        .where(appointments.c.start >= start, appointments.c.start < end)
        .where(appointments.c.status.in_(LIVE))
    )
    return [dict(row._mapping) for row in rows]


BOOKING_LOCK = 17_0017  # pg_advisory_xact_lock key: one clinic-wide booking at a time


def lock_for_booking(conn: Connection) -> None:
    """Serialise bookings (nurse rules span chairs, so chair claims alone cannot). SQLite's
    BEGIN IMMEDIATE already holds the one write lock."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({BOOKING_LOCK})")


def busy_cells(
    conn: Connection, chair_ids: Iterable[str], start: datetime, end: datetime, cell: timedelta
) -> dict[str, list[Interval]]:
    """Claimed cells per chair between start and end (each cell is one Interval)."""
    rows = conn.execute(
        select(chair_claims.c.chair_id, chair_claims.c.cell_start).where(
            chair_claims.c.chair_id.in_(list(chair_ids)),
            chair_claims.c.cell_start >= start - cell,
            chair_claims.c.cell_start < end,
        )
    )
    busy: dict[str, list[Interval]] = defaultdict(list)
    for chair_id, cell_start in rows:
        busy[chair_id].append(Interval(cell_start, cell_start + cell))
    return dict(busy)


def cells(start: datetime, end: datetime, cell: timedelta) -> list[datetime]:
    out, at = [], start
    while at < end:
        out.append(at)
        at += cell
    return out


def claim_cells(
    conn: Connection,
    appointment_id: str,
    chair_id: str,
    start: datetime,
    end: datetime,
    cell: timedelta,
) -> None:
    """Raises IntegrityError when any cell is already claimed (the chair is taken)."""
    rows = [
        {"chair_id": chair_id, "cell_start": at, "appointment_id": appointment_id}
        for at in cells(start, end, cell)
    ]
    conn.execute(insert(chair_claims), rows)


def release_cells(conn: Connection, appointment_id: str) -> None:
    conn.execute(delete(chair_claims).where(chair_claims.c.appointment_id == appointment_id))


def insert_appointment(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(appointments), values)


def insert_new_visits(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[int]:
    """Insert the rows whose (referral, visit) is not taken yet, in one statement where the
    database can skip the others; the visits inserted. A taken visit raises nothing."""
    dialect = conn.dialect.name
    if dialect in SKIPPING_INSERTS:
        query = (
            SKIPPING_INSERTS[dialect](appointments)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["referral_id", "visit"])
            .returning(appointments.c.visit)
        )
        return set(conn.execute(query).scalars())
    inserted = set()
    for row in rows:  # elsewhere: rolling back to a savepoint keeps the caller's other work
        try:
            with conn.begin_nested():
                conn.execute(insert(appointments), row)
        except IntegrityError:
            continue
        inserted.add(row["visit"])
    return inserted


def update_appointment(conn: Connection, appointment_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(appointments).where(appointments.c.id == appointment_id).values(**values))


def booked_between(conn: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Booked appointments overlapping [start, end): chair, protocol, start and end."""
    c = appointments.c
    rows = conn.execute(
        select(c.chair_id, c.protocol, c.start, c.end).where(
            c.status == "booked", c.start < end, c.end > start
        )
    )
    return [dict(row._mapping) for row in rows]
