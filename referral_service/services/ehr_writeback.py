"""Outcomes back to the EHR: the referral's Task, copied to the EHR as a Task whose focus is the
EHR's own ServiceRequest, so the referring physician sees accepted / booked / rejected /
needs-information, with the reasons, in their own EHR.

A job per local Task version (queued in the Task's transaction); the job writes the Task as it
is *when the job runs*, so jobs that run late or out of order still leave the newest state.
Created with If-None-Exist on our Task identifier, updated with If-Match.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from referral_service.adapters.db import outbox
from referral_service.adapters.db import referrals as repo
from referral_service.adapters.db.outbox import Job
from referral_service.adapters.db.tables import referral_identifiers
from referral_service.fhir.notifications import ehr_identifier_system
from referral_service.services import processing

WRITEBACK_JOB = "ehr-task-writeback"
TASK_SYSTEM = "https://referral-service.dev/task"
# write_task has no settings in hand; the job itself checks REFERRAL_EHR_WRITEBACK.
DEFAULT_ATTEMPTS = 8
_COPIED = (
    "status",
    "businessStatus",
    "statusReason",
    "intent",
    "code",
    "authoredOn",
    "lastModified",
    "for",
    "note",
    "input",
)


def task_changed(
    conn: Connection, referral_id: str, source: str, version: int, now: datetime
) -> None:
    """Called by write_task: queue the write-back for referrals that came from the EHR."""
    if source != "webhook" and not _linked_to_ehr(conn, referral_id):
        return
    outbox.enqueue(
        conn,
        WRITEBACK_JOB,
        now=now,
        max_attempts=DEFAULT_ATTEMPTS,
        referral_id=referral_id,
        dedupe_key=f"{WRITEBACK_JOB}:{referral_id}:{version}",
    )


def _linked_to_ehr(conn: Connection, referral_id: str) -> bool:
    rows = conn.execute(
        select(referral_identifiers.c.system).where(
            referral_identifiers.c.referral_id == referral_id
        )
    ).scalars()
    return any(system.endswith("/ServiceRequest") for system in rows)


def write_back(runtime: Any, job: Job) -> str:
    """The `ehr-task-writeback` job."""
    from referral_service.adapters.ehr.errors import EhrConflict, EhrUnavailable

    if not runtime.settings.writes_back_to_ehr or runtime.ehr_client is None:
        return "skipped (write-back off)"
    assert job.referral_id is not None
    try:
        for _ in range(3):
            desired = _desired_task(runtime, job.referral_id)
            if desired is None:
                return "skipped (not an EHR order)"
            try:
                return _put(runtime.ehr_client, desired)
            except EhrConflict:
                continue  # someone (another job) wrote in between: read both sides again
    except EhrUnavailable as exc:
        raise processing.RetryLater(type(exc).__name__) from exc
    raise processing.RetryLater("the EHR Task kept changing")


def _desired_task(runtime: Any, referral_id: str) -> dict[str, Any] | None:
    system = ehr_identifier_system(str(runtime.settings.ehr_base_url))
    with runtime.engine.connect() as conn:
        order_id = conn.execute(
            select(referral_identifiers.c.value).where(
                referral_identifiers.c.referral_id == referral_id,
                referral_identifiers.c.system == system,
            )
        ).scalar()
        task = repo.get_task_for_referral(conn, referral_id)
        appointment = repo.get_appointment_for_referral(conn, referral_id)
    if order_id is None or task is None or not task.resource:
        return None
    booked = appointment and appointment["status"] != "cancelled" and appointment["ehr_reference"]
    return ehr_task(task.resource, order_id, booked or None)


def ehr_task(local: dict[str, Any], order_id: str, appointment_ref: str | None) -> dict[str, Any]:
    """Our Task as the EHR should hold it: its focus is the EHR's ServiceRequest, its output
    the EHR's Appointment; our Task id is its identifier."""
    task = {key: local[key] for key in _COPIED if key in local}
    if str((task.get("for") or {}).get("reference", "")).startswith("#"):
        del task["for"]  # a patient contained in a directly sent referral means nothing there
    task["resourceType"] = "Task"
    task["identifier"] = [{"system": TASK_SYSTEM, "value": local["id"]}]
    task["focus"] = {"reference": f"ServiceRequest/{order_id}"}
    task["basedOn"] = [{"reference": f"ServiceRequest/{order_id}"}]
    if appointment_ref:
        task["output"] = [
            {"type": {"text": "appointment"}, "valueReference": {"reference": appointment_ref}}
        ]
    return task


def _put(ehr: Any, desired: dict[str, Any]) -> str:
    from referral_service.adapters.ehr.headers import etag

    identifier = desired["identifier"][0]
    current = ehr.create(
        desired, if_none_exist=f"identifier={identifier['system']}|{identifier['value']}"
    )
    if _same(current, desired):
        return f"EHR Task/{current.get('id')} {desired['status']}"
    ehr.update({**desired, "id": current["id"]}, if_match=etag(current))
    return f"EHR Task/{current.get('id')} updated to {desired['status']}"


def _same(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    def canonical(task: dict[str, Any]) -> str:
        body = {k: v for k, v in task.items() if k not in ("id", "meta", "text")}
        return json.dumps(body, sort_keys=True)

    return canonical(current) == canonical(desired)


def register_jobs() -> None:
    processing.register(WRITEBACK_JOB, write_back)


register_jobs()
