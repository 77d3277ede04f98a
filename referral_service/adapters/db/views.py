"""Read models for the staff API and console: the rows their lists and pages show (queries
joined across tables for reading only; writes go through the repositories)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select

from referral_service.adapters.db.tables import appointments, referrals, tasks


class StaffViews:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def referrals(
        self, *, status: str | None, decision: str | None, count: int, offset: int
    ) -> list[dict[str, Any]]:
        """Referrals with their Task's status, newest first."""
        query = select(
            referrals.c.id,
            referrals.c.sender,
            referrals.c.priority,
            referrals.c.decision_outcome,
            referrals.c.received_at,
            tasks.c.status,
            tasks.c.business_status,
            tasks.c.id.label("task_id"),
        ).join(tasks, tasks.c.referral_id == referrals.c.id)
        if status:
            query = query.where((tasks.c.business_status == status) | (tasks.c.status == status))
        if decision:
            query = query.where(referrals.c.decision_outcome == decision)
        query = query.order_by(referrals.c.received_at.desc()).limit(count).offset(offset)
        return [dict(row) for row in self._conn.execute(query).mappings()]

    def waiting(self, business_statuses: Iterable[str]) -> list[dict[str, Any]]:
        """Referrals whose Task is in one of these business statuses (the console's queue)."""
        query = _queue_rows().where(tasks.c.business_status.in_(list(business_statuses)))
        return [dict(row) for row in self._conn.execute(query).mappings()]

    def latest(self, business_status: str, limit: int) -> list[dict[str, Any]]:
        """The newest referrals whose Task is in this business status (the console's decided
        lanes), newest first, at most `limit`."""
        query = (
            _queue_rows()
            .where(tasks.c.business_status == business_status)
            .order_by(referrals.c.received_at.desc())
            .limit(limit)
        )
        return [dict(row) for row in self._conn.execute(query).mappings()]

    def live_appointments(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Appointments starting in [start, end), not cancelled, in time order."""
        query = (
            select(appointments)
            .where(appointments.c.start >= start, appointments.c.start < end)
            .where(appointments.c.status.not_in(("cancelled", "entered-in-error", "proposed")))
            .order_by(appointments.c.start)
        )
        return [dict(row) for row in self._conn.execute(query).mappings()]

    def repeats_due(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Repeat courses recorded as due (status proposed) whose window overlaps [start, end)."""
        query = (
            select(appointments)
            .where(appointments.c.status == "proposed")
            .where(appointments.c.start < end, appointments.c.end > start)
            .order_by(appointments.c.start)
        )
        return [dict(row) for row in self._conn.execute(query).mappings()]

    def decisions_since(self, since: datetime) -> list[tuple[datetime, str | None]]:
        """(received at, decision outcome) of the referrals received since then."""
        query = select(referrals.c.received_at, referrals.c.decision_outcome).where(
            referrals.c.received_at >= since
        )
        return [(row[0], row[1]) for row in self._conn.execute(query)]


def _queue_rows() -> Select[Any]:
    """A referral as the console's lanes list it: its priority, decision and Task status."""
    return select(
        referrals.c.id,
        referrals.c.priority,
        referrals.c.decision,
        referrals.c.received_at,
        tasks.c.business_status,
    ).join(tasks, tasks.c.referral_id == referrals.c.id)
