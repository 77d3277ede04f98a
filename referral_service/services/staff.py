"""The staff/ops use cases: work lists, a referral's full story, review, retry."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import select

from referral_service.adapters.db import referrals as repo
from referral_service.adapters.db.tables import referrals, tasks
from referral_service.domain import lifecycle
from referral_service.domain.decision import Reason
from referral_service.fhir.outcome import Conflict, NotFound
from referral_service.services.assessment import queue_booking
from referral_service.services.tasks import write_task

DEFAULT_PROTOCOL = "standard-infusion"


def list_referrals(
    runtime: Any, *, status: str | None, decision: str | None, count: int, offset: int
) -> list[dict[str, Any]]:
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
    with runtime.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def referral_detail(runtime: Any, referral_id: str) -> dict[str, Any]:
    with runtime.engine.connect() as conn:
        referral = repo.get_referral(conn, referral_id)
        if referral is None:
            raise NotFound.single("not-found", f"referral {referral_id} is not known")
        task = repo.get_task_for_referral(conn, referral_id)
        appointment = repo.get_appointment_for_referral(conn, referral_id)
        events = repo.list_events(conn, referral_id)
    return {
        "id": referral.id,
        "sender": referral.sender,
        "version": referral.version_id,
        "status": referral.status,
        "priority": referral.priority,
        "received_at": referral.received_at,
        "decision": referral.decision.to_dict() if referral.decision else None,
        "task": task.resource if task else None,
        "appointment": appointment["resource"] if appointment else None,
        "events": events,
    }


def review(runtime: Any, referral_id: str, *, action: str, note: str, reviewer: str) -> None:
    now = runtime.now()
    with runtime.engine.begin() as conn:
        referral = repo.get_referral(conn, referral_id, for_update=True)
        task = repo.get_task_for_referral(conn, referral_id)
        if referral is None or task is None:
            raise NotFound.single("not-found", f"referral {referral_id} is not known")
        if not lifecycle.may_review(task.state) or referral.decision is None:
            raise Conflict.single(
                "conflict", f"the referral is {task.state.business_status}, not waiting for review"
            )
        outcome = "approved" if action == "approve" else "declined"
        reason = Reason(
            "staff-review",
            "met" if action == "approve" else "not-met",
            f"{outcome} by {reviewer} at {now.isoformat()}",
        )
        decided = dataclasses.replace(
            referral.decision,
            decision="eligible" if action == "approve" else "ineligible",
            protocol=(referral.decision.protocol or DEFAULT_PROTOCOL)
            if action == "approve"
            else referral.decision.protocol,
            reasons=(*referral.decision.reasons, reason),
        )
        repo.record_decision(conn, referral_id, decided)
        repo.add_event(
            conn,
            referral_id,
            "reviewed",
            now,
            action=action,
            reviewer=reviewer,
            note_length=len(note),
        )
        state = lifecycle.ELIGIBLE if action == "approve" else lifecycle.INELIGIBLE
        write_task(
            conn,
            referral_id,
            state,
            now,
            status_note=f"review: {outcome} by {reviewer}" + (f": {note}" if note else ""),
        )
        if action == "approve":
            queue_booking(conn, runtime, referral_id, now, attempt_key="review")


def retry(runtime: Any, referral_id: str) -> None:
    now: datetime = runtime.now()
    with runtime.engine.begin() as conn:
        task = repo.get_task_for_referral(conn, referral_id)
        if task is None:
            raise NotFound.single("not-found", f"referral {referral_id} is not known")
        if not lifecycle.may_retry_booking(task.state):
            raise Conflict.single(
                "conflict",
                f"the referral is {task.state.business_status}; only failed bookings are retried",
            )
        write_task(conn, referral_id, lifecycle.ELIGIBLE, now, status_note="booking retried")
        repo.add_event(conn, referral_id, "retry-requested", now)
        queue_booking(conn, runtime, referral_id, now, attempt_key=f"retry-{now.timestamp()}")
