"""The repositories a unit of work hands to use cases: each one a table family's queries bound
to the unit's connection (the SQL itself lives in referrals.py, local_schedule.py, outbox.py,
resources.py beside this module)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from referral_service.adapters.db import audit, cds, local_schedule, outbox
from referral_service.adapters.db import referrals as rows
from referral_service.adapters.db import resources as stored
from referral_service.adapters.db import search as search_sql
from referral_service.adapters.db.tables import (
    referral_identifiers,
    service_state,
    stored_resources,
    webhook_events,
)
from referral_service.domain.decision import Decision
from referral_service.domain.lifecycle import TaskState
from referral_service.domain.scheduling.slots import Interval
from referral_service.fhir.search import Criteria

# Built once: every Task change asks it (adapters/db/referrals.py says why).
_SYSTEMS_OF = select(referral_identifiers.c.system).where(
    referral_identifiers.c.referral_id == bindparam("referral_id")
)


class Referrals:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, **values: Any) -> None:
        rows.insert_referral(self._conn, **values)

    def get(self, referral_id: str, *, for_update: bool = False) -> rows.ReferralRow | None:
        return rows.get_referral(self._conn, referral_id, for_update=for_update)

    def head(self, referral_id: str, *, for_update: bool = False) -> rows.ReferralHead | None:
        return rows.get_referral_head(self._conn, referral_id, for_update=for_update)

    def with_task(self, referral_id: str) -> tuple[rows.ReferralRow, rows.TaskRow] | None:
        return rows.get_referral_with_task(self._conn, referral_id)

    def head_with_task(
        self, referral_id: str, *, for_update: bool = False
    ) -> tuple[rows.ReferralHead, rows.TaskRow] | None:
        """`for_update` locks both rows (PostgreSQL)."""
        return rows.get_head_with_task(self._conn, referral_id, for_update=for_update)

    def version(self, referral_id: str, version_id: int) -> dict[str, Any] | None:
        return rows.get_version(self._conn, referral_id, version_id)

    def save_new_version(self, referral_id: str, version_id: int, **values: Any) -> None:
        rows.save_new_version(self._conn, referral_id, version_id, **values)

    def record_decision(self, referral_id: str, decision: Decision) -> None:
        rows.record_decision(self._conn, referral_id, decision)

    def ids_with_task_in(self, business_statuses: Iterable[str]) -> list[str]:
        """The referrals whose Task has one of these business statuses, oldest first."""
        return rows.referral_ids_in(self._conn, business_statuses)


class Tasks:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, **values: Any) -> None:
        rows.insert_task(self._conn, **values)

    def for_referral(self, referral_id: str) -> rows.TaskRow | None:
        return rows.get_task_for_referral(self._conn, referral_id)

    def get(self, task_id: str) -> rows.TaskRow | None:
        return rows.get_task(self._conn, task_id)

    def save(
        self,
        task_id: str,
        state: TaskState,
        resource: dict[str, Any],
        version_id: int,
        now: datetime,
    ) -> None:
        rows.save_task(self._conn, task_id, state, resource, version_id, now)


class Events:
    """A referral's history: what happened to it, when (never patient data)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, referral_id: str, kind: str, now: datetime, **detail: Any) -> None:
        rows.add_event(self._conn, referral_id, kind, now, **detail)

    def list(self, referral_id: str) -> list[dict[str, Any]]:
        return rows.list_events(self._conn, referral_id)


class Identifiers:
    """Business identifiers of referrals (primary key: sender + system + value)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def claim(self, sender: str, referral_id: str, identifiers: Iterable[tuple[str, str]]) -> None:
        rows.claim_identifiers(self._conn, sender, referral_id, identifiers)

    def claim_new(self, sender: str, referral_id: str, identifiers: list[tuple[str, str]]) -> None:
        rows.claim_new_identifiers(self._conn, sender, referral_id, identifiers)

    def find_referral(self, sender: str, identifiers: Iterable[tuple[str, str]]) -> str | None:
        return rows.find_by_identifiers(self._conn, sender, identifiers)

    def systems_of(self, referral_id: str) -> list[str]:
        return list(self._conn.execute(_SYSTEMS_OF, {"referral_id": referral_id}).scalars())

    def value_of(self, referral_id: str, system: str) -> str | None:
        query = select(referral_identifiers.c.value).where(
            referral_identifiers.c.referral_id == referral_id,
            referral_identifiers.c.system == system,
        )
        value = self._conn.execute(query).scalar()
        return None if value is None else str(value)

    def holders(self, system: str, value: str) -> list[tuple[str, str]]:
        """(referral id, sender) of every referral holding this identifier."""
        query = select(referral_identifiers.c.referral_id, referral_identifiers.c.sender).where(
            referral_identifiers.c.system == system, referral_identifiers.c.value == value
        )
        return [(str(row[0]), str(row[1])) for row in self._conn.execute(query)]

    def referral_of(self, system: str, value: str) -> str | None:
        query = select(referral_identifiers.c.referral_id).where(
            referral_identifiers.c.system == system, referral_identifiers.c.value == value
        )
        found = self._conn.execute(query).scalar()
        return None if found is None else str(found)


class Appointments:
    """Appointment rows (ours, or mirrors of the EHR's) and the chair cells local ones claim."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def for_referral(self, referral_id: str) -> dict[str, Any] | None:
        found = local_schedule.find_appointment(self._conn, referral_id)
        return None if found is None else dict(found)

    def series(self, referral_id: str) -> list[dict[str, Any]]:
        """Every visit of the referral's series (and a repeat course due), by visit."""
        return local_schedule.series_rows(self._conn, referral_id)

    def live_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return local_schedule.live_between(self._conn, start, end)

    def lock_for_booking(self) -> None:
        local_schedule.lock_for_booking(self._conn)

    def add(self, values: Mapping[str, Any]) -> None:
        local_schedule.insert_appointment(self._conn, values)

    def add_new(self, rows: Sequence[Mapping[str, Any]]) -> set[int]:
        """Add the rows whose visit the referral has no row for; the visits added."""
        return local_schedule.insert_new_visits(self._conn, rows)

    def update(self, appointment_id: str, values: Mapping[str, Any]) -> None:
        local_schedule.update_appointment(self._conn, appointment_id, values)

    def busy_cells(
        self, chair_ids: Iterable[str], start: datetime, end: datetime, cell: timedelta
    ) -> dict[str, list[Interval]]:
        return local_schedule.busy_cells(self._conn, chair_ids, start, end, cell)

    def claim_cells(
        self,
        appointment_id: str,
        chair_id: str,
        start: datetime,
        end: datetime,
        cell: timedelta,
    ) -> None:
        local_schedule.claim_cells(self._conn, appointment_id, chair_id, start, end, cell)

    def release_cells(self, appointment_id: str) -> None:
        local_schedule.release_cells(self._conn, appointment_id)

    def booked_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return local_schedule.booked_between(self._conn, start, end)


class Jobs:
    """The outbox, in the unit's transaction; `attempts`: REFERRAL_JOB_MAX_ATTEMPTS."""

    def __init__(self, conn: Connection, attempts: int) -> None:
        self._conn = conn
        self.attempts = attempts

    def add(
        self,
        kind: str,
        *,
        now: datetime,
        referral_id: str | None = None,
        payload: dict[str, Any] | None = None,
        dedupe_key: str | None = None,
        run_after: datetime | None = None,
        max_attempts: int | None = None,
    ) -> None:
        outbox.enqueue(
            self._conn,
            kind,
            now=now,
            max_attempts=max_attempts or self.attempts,
            referral_id=referral_id,
            payload=payload,
            dedupe_key=dedupe_key,
            run_after=run_after,
        )

    def reset_for_retry(self, referral_id: str, kind: str, *, now: datetime) -> int:
        return outbox.reset_for_retry(self._conn, referral_id, kind, now=now)


class StoredResources:
    """Resources senders pushed one by one (Observation, Condition, ...), versioned."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, *args: Any, **kwargs: Any) -> stored.StoredResource | None:
        return stored.get(self._conn, *args, **kwargs)

    def exists(self, resource_type: str, resource_id: str) -> bool:
        query = select(stored_resources.c.id).where(
            stored_resources.c.resource_type == resource_type, stored_resources.c.id == resource_id
        )
        return self._conn.execute(query).first() is not None

    def insert_resource(self, resource: stored.StoredResource) -> None:
        stored.insert_resource(self._conn, resource)

    def save_version(self, resource: stored.StoredResource) -> None:
        stored.save_version(self._conn, resource)

    def claim_identifiers(self, *args: Any, **kwargs: Any) -> Any:
        return stored.claim_identifiers(self._conn, *args, **kwargs)

    def find_by_identifiers(self, *args: Any, **kwargs: Any) -> Any:
        return stored.find_by_identifiers(self._conn, *args, **kwargs)

    def search(
        self, resource_type: str, scope: str | None, criteria: Criteria, now: datetime
    ) -> tuple[list[stored.StoredResource], int]:
        """One page of a FHIR search (its criteria already read and checked at the edge)."""
        filters = search_sql.conditions(search_sql.stored(resource_type), criteria, scope, now)
        page = (criteria.count, criteria.offset)
        return stored.search(self._conn, resource_type, scope, filters, page)

    def about_patient(self, sender: str, patient_key: str) -> list[stored.StoredResource]:
        return stored.about_patient(self._conn, sender, patient_key)

    def referrals_waiting_on(self, sender: str, patient_key: str) -> list[str]:
        return stored.referrals_waiting_on(self._conn, sender, patient_key)


class ServiceState:
    """Small durable values of the service itself (reconciliation cursors, seen versions)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def read(self, key: str, *, for_update: bool = False) -> dict[str, Any] | None:
        query = select(service_state.c.value).where(service_state.c.key == key)
        if for_update and self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        value = self._conn.execute(query).scalar()
        return value if isinstance(value, dict) else None

    def write(self, key: str, value: dict[str, Any], now: datetime) -> None:
        change = (
            update(service_state)
            .where(service_state.c.key == key)
            .values(value=value, updated_at=now)
        )
        if self._conn.execute(change).rowcount:
            return
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(service_state).values(key=key, value=value, updated_at=now)
                )
        except IntegrityError:
            self._conn.execute(change)  # another transaction created the row first


class WebhookEvents:
    """Notifications the EHR sent, as received (one row per delivery, deduplicated)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, *, dedupe_key: str | None, received_at: datetime, **row: Any) -> int:
        """Raises IntegrityError for a delivery already on record (same dedupe key)."""
        query = (
            insert(webhook_events)
            .values(dedupe_key=dedupe_key, received_at=received_at, **row)
            .returning(webhook_events.c.id)
        )
        return int(self._conn.execute(query).scalar_one())

    def get(self, event_id: int) -> dict[str, Any] | None:
        query = select(webhook_events).where(webhook_events.c.id == event_id)
        row = self._conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def count(self) -> int:
        return len(self._conn.execute(select(webhook_events.c.id)).all())


class AuditTrail:
    """AuditEvent rows: who did what to which referral, as codes and ids only."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, row: audit.AuditRow) -> None:
        audit.add(self._conn, row)

    def get(self, audit_id: str) -> audit.AuditRow | None:
        return audit.get(self._conn, audit_id)

    def search(self, query: audit.AuditQuery) -> tuple[list[audit.AuditRow], int]:
        return audit.search(self._conn, query)


class CdsCards:
    """The CDS Hooks cards this service issued, and the feedback clinicians gave on them."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, cards: Iterable[cds.IssuedCard]) -> None:
        cds.add_cards(self._conn, cards)

    def issued_by(self, service_id: str, uuids: Iterable[str]) -> set[str]:
        return cds.issued_by(self._conn, service_id, uuids)

    def add_feedback(self, rows: Iterable[cds.FeedbackRow]) -> None:
        cds.add_feedback(self._conn, rows)
