"""The staff/ops use cases: work lists, a referral's full story, review, retry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from referral_service.domain import lifecycle
from referral_service.domain.eligibility.rule_labels import rule_label
from referral_service.domain.errors import NotKnown, WrongState
from referral_service.domain.review import review_note, reviewed, state_after_review
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.tasks import write_task


def list_referrals(
    runtime: Dependencies, *, status: str | None, decision: str | None, count: int, offset: int
) -> list[dict[str, Any]]:
    with runtime.unit_of_work(read_only=True) as uow:
        return uow.views.referrals(status=status, decision=decision, count=count, offset=offset)


def referral_detail(runtime: Dependencies, referral_id: str) -> dict[str, Any]:
    with runtime.unit_of_work(read_only=True) as uow:
        referral = uow.referrals.get(referral_id)
        if referral is None:
            raise NotKnown(f"referral {referral_id} is not known")
        task = uow.tasks.for_referral(referral_id)
        appointment = uow.appointments.for_referral(referral_id)
        events = uow.events.list(referral_id)
    return {
        "id": referral.id,
        "sender": referral.sender,
        "version": referral.version_id,
        "status": referral.status,
        "priority": referral.priority,
        "received_at": referral.received_at,
        "decision": _labelled(referral.decision.to_dict()) if referral.decision else None,
        "task": task.resource if task else None,
        "appointment": appointment["resource"] if appointment else None,
        "events": events,
    }


def _labelled(decision: dict[str, Any]) -> dict[str, Any]:
    """The decision with each reason's rule also in plain words (`label`, beside `rule`)."""
    for reason in decision["reasons"]:
        reason["label"] = rule_label(reason["rule"])
    return decision


def review(
    runtime: Dependencies, referral_id: str, *, action: str, note: str, reviewer: str
) -> None:
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        referral = uow.referrals.get(referral_id, for_update=True)
        task = uow.tasks.for_referral(referral_id)
        if referral is None or task is None:
            raise NotKnown(f"referral {referral_id} is not known")
        if not lifecycle.may_review(task.state) or referral.decision is None:
            raise WrongState(
                f"the referral is {task.state.business_status}, not waiting for review"
            )
        approve = action == "approve"
        decided = reviewed(referral.decision, approve=approve, reviewer=reviewer, at=now)
        uow.referrals.record_decision(referral_id, decided)
        uow.events.add(
            referral_id,
            "reviewed",
            now,
            action=action,
            reviewer=reviewer,
            note_length=len(note),
        )
        write_task(
            uow,
            referral_id,
            state_after_review(approve),
            now,
            status_note=review_note(approve, reviewer, note),
        )
        if approve:
            jobs.book(uow, referral_id, now, attempt_key="review")


def retry(runtime: Dependencies, referral_id: str) -> None:
    now: datetime = runtime.now()
    with runtime.unit_of_work() as uow:
        task = uow.tasks.for_referral(referral_id)
        if task is None:
            raise NotKnown(f"referral {referral_id} is not known")
        if not lifecycle.may_retry_booking(task.state):
            raise WrongState(
                f"the referral is {task.state.business_status}; only failed bookings are retried"
            )
        write_task(uow, referral_id, lifecycle.ELIGIBLE, now, status_note="booking retried")
        uow.events.add(referral_id, "retry-requested", now)
        jobs.book(uow, referral_id, now, attempt_key=f"retry-{now.timestamp()}")
