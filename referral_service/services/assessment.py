"""Running the eligibility engine on referrals: the `$evaluate` dry run and the worker's
evaluation of a stored referral, which moves its Task and queues the booking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from referral_service.adapters.db import outbox
from referral_service.adapters.db import referrals as repo
from referral_service.domain import lifecycle
from referral_service.domain.decision import Decision
from referral_service.fhir.outcome import Issue, Unprocessable
from referral_service.fhir.referral import validate_referral
from referral_service.fhir.validation import validate_resource
from referral_service.observability import metrics
from referral_service.services import resources as own_resources
from referral_service.services.evaluation import UnreadableReferral, evaluate_document
from referral_service.services.tasks import write_task


def dry_run_evaluation(runtime: Any, document: dict[str, Any]) -> Decision:
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
        raise Unprocessable.single("invalid", str(exc)) from None


def _validate_for_evaluation(document: dict[str, Any]) -> None:
    if document.get("resourceType") == "Bundle":
        issues = validate_resource(document)
        if issues:
            raise Unprocessable(*issues)
        return
    validate_referral(document, [])


def ehr_resolver(runtime: Any) -> Callable[[str], dict[str, Any] | None] | None:
    """Reads a referenced resource from the clinic EHR; unknown references are missing data."""
    client = runtime.ehr_client
    if client is None:
        return None
    from referral_service.adapters.ehr.errors import EhrNotFound, EhrRequestError

    def resolve(reference: str) -> dict[str, Any] | None:
        parts = reference.split("/")
        if len(parts) < 2 or not parts[-1] or reference.startswith(("#", "urn:")):
            return None
        try:
            return client.read(parts[-2], parts[-1])
        except (EhrNotFound, EhrRequestError):
            return None

    return resolve


def evaluate_stored_referral(runtime: Any, referral_id: str) -> str:
    """The worker's `evaluate` job. Returns what happened (for the job log)."""
    engine = runtime.engine
    with engine.connect() as conn:
        referral = repo.get_referral(conn, referral_id)
        task = repo.get_task_for_referral(conn, referral_id)
    if referral is None or task is None or not lifecycle.may_reevaluate(task.state):
        return "skipped"
    if referral.status != "active":
        return "skipped (not active)"
    decision = decide_stored(runtime, referral)
    now = runtime.now()
    with engine.begin() as conn:
        current = repo.get_referral_head(conn, referral_id, for_update=True)
        task = repo.get_task_for_referral(conn, referral_id)
        if current is None or task is None or current.version_id != referral.version_id:
            return "superseded"  # a newer version has its own evaluation job
        if not lifecycle.may_reevaluate(task.state):
            return "skipped"
        apply_decision(conn, runtime, current, decision, now)
    metrics.decision_made(decision.decision)
    return decision.decision


def decide_stored(runtime: Any, referral: repo.ReferralRow) -> Decision:
    """The decision the current policy gives a stored referral; nothing is written."""
    # Resources the sender pushed one by one count as if they had come in its Bundle.
    supporting = own_resources.supporting_for(
        runtime.engine, referral.sender, referral.patient_ref, referral.supporting
    )
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
            resolver=own_resources.own_resolver(
                runtime.engine, referral.sender, ehr_resolver(runtime)
            ),
            received_at=referral.received_at,
            time_zone=runtime.clinic.zone,
        )
    except UnreadableReferral as exc:
        raise Unprocessable(Issue("invalid", str(exc))) from None


def apply_decision(
    conn: Any, runtime: Any, referral: repo.ReferralHead, decision: Decision, now: datetime
) -> None:
    """Record a decision on the referral whose head (row locked) the caller holds."""
    referral_id = referral.id
    repo.record_decision(conn, referral_id, decision)
    state = lifecycle.state_for_decision(decision.decision)
    write_task(conn, referral_id, state, now, referral=replace(referral, decision=decision))
    repo.add_event(
        conn,
        referral_id,
        "evaluated",
        now,
        decision=decision.decision,
        category=decision.category,
        protocol=decision.protocol,
        policy_version=decision.policy_version,
    )
    if state == lifecycle.ELIGIBLE:
        queue_booking(conn, runtime, referral_id, now, attempt_key=f"v{referral.version_id}")


def queue_booking(
    conn: Any, runtime: Any, referral_id: str, now: datetime, attempt_key: str
) -> None:
    """One booking job per referral version (or staff action); booking itself is idempotent."""
    outbox.enqueue(
        conn,
        "book",
        now=now,
        max_attempts=runtime.settings.job_max_attempts,
        referral_id=referral_id,
        dedupe_key=f"book:{referral_id}:{attempt_key}",
    )
