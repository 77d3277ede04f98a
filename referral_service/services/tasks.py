"""Writing a referral's Task: one place that rebuilds the FHIR Task from what the database
knows (state, decision, appointment, placer identifiers) and bumps its version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from referral_service.adapters.db import referrals as repo
from referral_service.domain.lifecycle import TaskState
from referral_service.fhir.task import TaskView, build_task


def write_task(
    conn: Connection,
    referral_id: str,
    state: TaskState,
    now: datetime,
    status_note: str | None = None,
    referral: repo.ReferralHead | None = None,
) -> dict:
    """`referral`: its head as the caller already holds it in this transaction (saves a read)."""
    referral = referral or repo.get_referral_head(conn, referral_id)
    task = repo.get_task_for_referral(conn, referral_id)
    assert referral is not None and task is not None
    appointment = repo.get_appointment_for_referral(conn, referral_id)
    appointment_ref = None
    if appointment is not None and appointment["status"] != "cancelled":
        appointment_ref = f"Appointment/{appointment['id']}"
    view = TaskView(
        task_id=task.id,
        referral_id=referral_id,
        version_id=task.version_id + 1,
        last_updated=now,
        authored_on=referral.received_at,
        state=state,
        patient_ref=referral.patient_ref,
        decision=referral.decision,
        appointment_ref=appointment_ref,
        placer_identifiers=tuple(task.resource.get("identifier", ())),
        status_note=status_note,
    )
    resource = build_task(view)
    repo.save_task(conn, task.id, state, resource, view.version_id, now)
    from referral_service.services import ehr_writeback  # imported here: it needs the outbox

    ehr_writeback.task_changed(conn, referral_id, referral.source, view.version_id, now)
    return resource
