"""Receiving referrals: create (idempotent per sender + identifier), update, cancel.

Every accepted referral gets its Task and its evaluation job in the same transaction, so a 2xx
means the referral will reach a final state even if the process dies right after answering.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.unit_of_work import (
    KeyTaken,
    SqlUnitOfWork,
    retry_on_disconnect,
)
from referral_service.domain import lifecycle
from referral_service.fhir.referral import (
    ReferralFields,
    business_identifiers,
    read_fields,
    validate_referral,
)
from referral_service.fhir.task import TaskView, build_task
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake.options import IntakeOptions
from referral_service.services.intake.revisions import (
    CANCELLING_STATUSES,
    update_in,
    update_referral,
)


@dataclass(frozen=True)
class IntakeResult:
    referral_id: str
    version_id: int
    created: bool  # False: an existing referral was returned (or given a new version)
    last_updated: datetime


def receive_referral(
    runtime: Dependencies,
    *,
    sender: str,
    document: dict[str, Any],
    now: datetime,
    options: IntakeOptions,
    supporting: list[dict[str, Any]] | None = None,
    referral_id: str | None = None,
) -> IntakeResult:
    """Accept a ServiceRequest; the same business identifier again returns (or updates) the
    referral it already made."""
    validate_referral(document, supporting or [])
    fields = read_fields(document)
    identifiers = business_identifiers(document)
    new_id = referral_id or str(uuid.uuid4())

    def accept() -> IntakeResult:
        try:
            with runtime.unit_of_work() as uow, uow.batched():
                _insert_new(uow, new_id, sender, document, fields, supporting or [], now, options)
                uow.identifiers.claim_new(sender, new_id, identifiers)
                if options.audit is not None:
                    options.audit(uow, new_id)
        except KeyTaken:
            with runtime.unit_of_work() as uow:
                existing = uow.identifiers.find_referral(sender, identifiers)
            if existing is None:
                raise
            return _resubmission(runtime, existing, sender, document, supporting, now, options)
        return IntakeResult(new_id, 1, True, now)

    # A PostgreSQL restart since the pooled connection was last used costs no referral.
    return retry_on_disconnect(accept)


def create_in(
    uow: SqlUnitOfWork,
    *,
    sender: str,
    document: dict[str, Any],
    now: datetime,
    options: IntakeOptions,
    supporting: list[dict[str, Any]],
) -> IntakeResult:
    """Create, or resubmit under a known identifier, in the caller's transaction (a Bundle
    transaction is all or nothing). The document is already validated."""
    identifiers = business_identifiers(document)
    existing = uow.identifiers.find_referral(sender, identifiers)
    if existing is None:
        new_id = str(uuid.uuid4())
        _insert_new(uow, new_id, sender, document, read_fields(document), supporting, now, options)
        uow.identifiers.claim_new(sender, new_id, identifiers)
        return IntakeResult(new_id, 1, True, now)
    current = uow.referrals.get(existing)
    assert current is not None
    if _same_content(current.resource, document) and _same_content(current.supporting, supporting):
        return IntakeResult(existing, current.version_id, False, current.last_updated)
    result = update_in(
        uow,
        sender=sender,
        referral_id=existing,
        document=document,
        if_match=None,
        now=now,
        options=options,
        supporting=supporting,
    )
    return IntakeResult(existing, result.version_id, False, now)


def find_existing(
    runtime: Dependencies, sender: str, identifiers: list[tuple[str, str]]
) -> str | None:
    with runtime.unit_of_work() as uow:
        return uow.identifiers.find_referral(sender, identifiers)


def _resubmission(
    runtime: Dependencies,
    referral_id: str,
    sender: str,
    document: dict[str, Any],
    supporting: list[dict[str, Any]] | None,
    now: datetime,
    options: IntakeOptions,
) -> IntakeResult:
    with runtime.unit_of_work() as uow:
        current = uow.referrals.get(referral_id)
    assert current is not None  # identifiers are only claimed together with their referral
    if _same_content(current.resource, document) and (
        supporting is None or _same_content(current.supporting, supporting)
    ):
        return IntakeResult(referral_id, current.version_id, False, current.last_updated)
    result = update_referral(
        runtime,
        sender=sender,
        referral_id=referral_id,
        document=document,
        if_match=None,
        now=now,
        options=options,
        supporting=supporting,
    )
    return IntakeResult(referral_id, result.version_id, False, result.last_updated)


def _same_content(stored: Any, incoming: Any) -> bool:
    return _canonical(stored) == _canonical(incoming)


def _canonical(value: Any) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in ("id", "meta")}
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _insert_new(
    uow: SqlUnitOfWork,
    referral_id: str,
    sender: str,
    document: dict[str, Any],
    fields: ReferralFields,
    supporting: list[dict[str, Any]],
    now: datetime,
    options: IntakeOptions,
) -> None:
    uow.referrals.add(
        id=referral_id,
        sender=sender,
        version_id=1,
        status=fields.status,
        intent=fields.intent,
        priority=fields.priority,
        patient_ref=fields.patient_ref,
        source=options.source,
        resource=document,
        supporting=supporting,
        authored_on=fields.authored_on,
        received_at=now,
        last_updated=now,
    )
    # The first Task version is built from what is in hand, not re-read: intake is the hot path.
    state = lifecycle.CANCELLED if fields.status in CANCELLING_STATUSES else lifecycle.RECEIVED
    task_id = str(uuid.uuid4())
    task = build_task(
        TaskView(
            task_id=task_id,
            referral_id=referral_id,
            version_id=1,
            last_updated=now,
            authored_on=now,
            state=state,
            patient_ref=fields.patient_ref,
        )
    )
    uow.tasks.add(
        id=task_id,
        referral_id=referral_id,
        sender=sender,
        version_id=1,
        status=state.status,
        business_status=state.business_status,
        resource=task,
        last_updated=now,
    )
    uow.events.add(referral_id, "received", now, source=options.source, version=1)
    if fields.status == "active":
        jobs.evaluate_new(uow, referral_id, now)
