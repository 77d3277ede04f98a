"""Reading referrals, Tasks and Appointments back, as FHIR resources, scoped to their sender."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from referral_service.adapters.db import referrals as repo
from referral_service.adapters.db import search as search_sql
from referral_service.adapters.db.tables import appointments
from referral_service.fhir.outcome import NotFound
from referral_service.fhir.search import Criteria

MAX_PAGE = 100


@dataclass(frozen=True)
class Page:
    resources: list[dict[str, Any]]
    total: int


def render_referral(
    resource: dict[str, Any], referral_id: str, version_id: int, last_updated: datetime
) -> dict[str, Any]:
    rendered = dict(resource)
    rendered["id"] = referral_id
    meta = dict(resource.get("meta") or {})
    meta.update(versionId=str(version_id), lastUpdated=_instant(last_updated))
    rendered["meta"] = meta
    return rendered


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_referral(engine: Engine, sender: str | None, referral_id: str) -> repo.ReferralRow:
    with engine.connect() as conn:
        row = repo.get_referral(conn, referral_id)
    if row is None or (sender is not None and row.sender != sender):
        # Another sender's referral is "not found", never "forbidden": ids must not leak.
        raise NotFound.single("not-found", f"ServiceRequest/{referral_id} is not known")
    return row


def referral_resource(engine: Engine, sender: str | None, referral_id: str) -> dict[str, Any]:
    row = read_referral(engine, sender, referral_id)
    return render_referral(row.resource, row.id, row.version_id, row.last_updated)


def referral_version(
    engine: Engine, sender: str | None, referral_id: str, version_id: int
) -> dict[str, Any]:
    read_referral(engine, sender, referral_id)
    with engine.connect() as conn:
        version = repo.get_version(conn, referral_id, version_id)
    if version is None:
        raise NotFound.single(
            "not-found", f"ServiceRequest/{referral_id} has no version {version_id}"
        )
    return render_referral(version["resource"], referral_id, version_id, version["recorded_at"])


def search_referrals(engine: Engine, sender: str | None, criteria: Criteria, now: datetime) -> Page:
    filters = search_sql.conditions(search_sql.SERVICE_REQUEST, criteria, sender, now)
    with engine.connect() as conn:
        rows, total = repo.search_referrals(
            conn, sender=sender, filters=filters, count=criteria.count, offset=criteria.offset
        )
    return Page(
        [render_referral(r.resource, r.id, r.version_id, r.last_updated) for r in rows], total
    )


def referral_history(engine: Engine, sender: str | None, referral_id: str) -> list[dict]:
    """Every version of one referral, newest first (the instance `_history`)."""
    read_referral(engine, sender, referral_id)
    with engine.connect() as conn:
        versions = repo.list_versions(conn, referral_id)
    return [
        render_referral(v["resource"], referral_id, v["version_id"], v["recorded_at"])
        for v in versions
    ]


def task_resource(engine: Engine, sender: str | None, task_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        task = repo.get_task(conn, task_id)
    if task is None or (sender is not None and task.sender != sender):
        raise NotFound.single("not-found", f"Task/{task_id} is not known")
    return task.resource


def search_tasks(engine: Engine, sender: str | None, criteria: Criteria, now: datetime) -> Page:
    filters = search_sql.conditions(search_sql.TASK, criteria, sender, now)
    with engine.connect() as conn:
        rows, total = repo.search_tasks(
            conn, sender=sender, filters=filters, count=criteria.count, offset=criteria.offset
        )
    return Page([row.resource for row in rows], total)


def appointment_resource(engine: Engine, sender: str | None, appointment_id: str) -> dict:
    with engine.connect() as conn:
        row = (
            conn.execute(select(appointments).where(appointments.c.id == appointment_id))
            .mappings()
            .first()
        )
    if row is None or (sender is not None and row["sender"] != sender):
        raise NotFound.single("not-found", f"Appointment/{appointment_id} is not known")
    return row["resource"]


def search_appointments(
    engine: Engine, sender: str | None, criteria: Criteria, now: datetime
) -> Page:
    filters = search_sql.conditions(search_sql.APPOINTMENT, criteria, sender, now)
    if sender is not None:
        filters.append(appointments.c.sender == sender)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(appointments).where(*filters))
        rows = conn.execute(
            select(appointments.c.resource)
            .where(*filters)
            .order_by(appointments.c.start, appointments.c.id)
            .limit(criteria.count)
            .offset(criteria.offset)
        ).scalars()
        return Page(list(rows), int(total.scalar() or 0))
