"""Running the eligibility engine on referrals: the `$evaluate` dry run and the worker's
evaluation of a stored referral, which moves its Task and queues the booking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from referral_service.adapters.db.referrals import ReferralHead, ReferralRow, TaskRow
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr.errors import EhrNotFound, EhrRequestError, EhrUnavailable
from referral_service.domain import lifecycle
from referral_service.domain.decision import Decision
from referral_service.domain.errors import Unacceptable
from referral_service.fhir.outcome import Unprocessable
from referral_service.fhir.referral import validate_referral
from referral_service.fhir.validation import validate_resource
from referral_service.observability import metrics
from referral_service.services import jobs
from referral_service.services.assessment.evaluation import UnreadableReferral, evaluate_document
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake import supporting as own_resources
from referral_service.services.jobs import Finish, Job, RetryLater
from referral_service.services.tasks import next_task, save_task


def dry_run_evaluation(runtime: Dependencies, document: dict[str, Any]) -> Decision:
    """Evaluate without storing anything (`$evaluate`, `referral-service evaluate`)."""
    _validate_for_evaluation(document)
    try:
        return evaluate_document(
            document,
            policy=runtime.policy,
            resolver=ehr_resolver(runtime),
            received_at=runtime.now(),
            time_zone=runtime.clinic.zone,
        )
    except UnreadableReferral as exc:
        raise Unacceptable(str(exc)) from None


def _validate_for_evaluation(document: dict[str, Any]) -> None:
    if document.get("resourceType") == "Bundle":
        issues = validate_resource(document)
        if issues:
            raise Unprocessable(*issues)
        return
    validate_referral(document, [])


def ehr_resolver(runtime: Dependencies) -> Callable[[str], dict[str, Any] | None] | None:
    """Reads a referenced resource from the clinic EHR; unknown references are missing data."""
    client = runtime.ehr_client
    if client is None:
        return None

    def resolve(reference: str) -> dict[str, Any] | None:
        parts = reference.split("/")
        if len(parts) < 2 or not parts[-1] or reference.startswith(("#", "urn:")):
            return None
        try:
            return client.read(parts[-2], parts[-1])
        except (EhrNotFound, EhrRequestError):
            return None

    return resolve


def evaluate_job(runtime: Dependencies, job: Job, finish: Finish | None = None) -> str:
    """The worker's `evaluate` job; `finish` completes it in the decision's own transaction."""
    assert job.referral_id is not None
    try:
        return evaluate_stored_referral(runtime, job.referral_id, finish)
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc


def evaluate_stored_referral(
    runtime: Dependencies, referral_id: str, finish: Finish | None = None
) -> str:
    """Evaluate a stored referral and move its Task. Returns what happened (for the job log).
    `finish` (the worker's) ends the job in the transaction that records the decision and
    queues the booking: one commit instead of two."""
    with runtime.unit_of_work(read_only=True) as uow:  # everything evaluation reads, at once
        found = uow.referrals.with_task(referral_id)
        if found is None or not lifecycle.may_reevaluate(found[1].state):
            return "skipped"
        referral, task = found
        if referral.status != "active":
            return "skipped (not active)"
        supporting = supporting_resources(uow, referral, task)
    decision = decide_stored(runtime, referral, supporting)
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        locked = uow.referrals.head_with_task(referral_id, for_update=True)
        if locked is None or locked[0].version_id != referral.version_id:
            return "superseded"  # a newer version has its own evaluation job
        current, task = locked
        if not lifecycle.may_reevaluate(task.state):
            return "skipped"
        apply_decision(uow, current, task, decision, now)
        if finish is not None:
            finish(uow, decision.decision)
    metrics.decision_made(decision.decision)
    return decision.decision


def supporting_resources(
    uow: SqlUnitOfWork, referral: ReferralRow, task: TaskRow | None
) -> list[dict[str, Any]]:
    """Resources the sender pushed one by one (about the patient, filed under the referral,
    named by its Task) count as if they had come in the referral's Bundle."""
    sent = referral.supporting + own_resources.named_by_task(uow, referral.sender, task)
    return own_resources.supporting_for(
        uow, referral.sender, referral.id, referral.patient_ref, sent
    )


def decide_stored(
    runtime: Dependencies,
    referral: ReferralRow,
    supporting: list[dict[str, Any]] | None = None,
) -> Decision:
    """The decision the current policy gives a stored referral; nothing is written.
    `supporting`: its `supporting_resources` as the caller read them (else read here)."""
    if supporting is None:
        with runtime.unit_of_work(read_only=True) as uow:
            task = uow.tasks.for_referral(referral.id)
            supporting = supporting_resources(uow, referral, task)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": referral.resource}]
        + [{"resource": resource} for resource in supporting],
    }
    try:
        return evaluate_document(
            bundle,
            policy=runtime.policy,
            resolver=own_resources.own_resolver(runtime, referral.sender, ehr_resolver(runtime)),
            received_at=referral.received_at,
            time_zone=runtime.clinic.zone,
        )
    except UnreadableReferral as exc:
        raise Unacceptable(str(exc)) from None


def apply_decision(
    uow: SqlUnitOfWork, referral: ReferralHead, task: TaskRow, decision: Decision, now: datetime
) -> None:
    """Record a decision on the referral whose head (row locked) and Task the caller holds."""
    referral_id = referral.id
    decided = replace(referral, decision=decision)
    state = lifecycle.state_for_decision(decision.decision)
    resource = next_task(uow, decided, task, state, now)
    with uow.batched():  # the decision's writes, sent together: one round trip on PostgreSQL
        uow.referrals.record_decision(referral_id, decision)
        save_task(uow, decided, task, state, resource, now)
        uow.events.add(
            referral_id,
            "evaluated",
            now,
            decision=decision.decision,
            category=decision.category,
            protocol=decision.protocol,
            policy_version=decision.policy_version,
        )
        if state == lifecycle.ELIGIBLE:
            jobs.book(uow, referral_id, now, attempt_key=f"v{referral.version_id}")
