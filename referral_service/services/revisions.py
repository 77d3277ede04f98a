"""New versions of a referral from its referrer: re-evaluation, or cancellation when revoked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from referral_service.adapters.db import outbox
from referral_service.adapters.db import referrals as repo
from referral_service.domain import lifecycle
from referral_service.fhir.outcome import Conflict, NotFound, PreconditionFailed, Unprocessable
from referral_service.fhir.referral import business_identifiers, read_fields, validate_referral
from referral_service.services.intake_options import IntakeOptions, enqueue_evaluation
from referral_service.services.tasks import write_task

CANCELLING_STATUSES = frozenset({"revoked", "entered-in-error"})


@dataclass(frozen=True)
class UpdateResult:
    version_id: int
    last_updated: datetime


def update_referral(
    engine: Engine,
    *,
    sender: str,
    referral_id: str,
    document: dict[str, Any],
    if_match: int | None,
    now: datetime,
    options: IntakeOptions,
    supporting: list[dict[str, Any]] | None = None,
) -> UpdateResult:
    """A new version from the referrer: re-evaluated, or cancelled when revoked."""
    if document.get("id") not in (None, referral_id):
        raise Unprocessable.single(
            "invalid", "the resource id does not match the URL", "ServiceRequest.id"
        )
    validate_referral(document, supporting or [])
    try:
        with engine.begin() as conn:
            return update_in(
                conn,
                sender=sender,
                referral_id=referral_id,
                document=document,
                if_match=if_match,
                now=now,
                options=options,
                supporting=supporting,
            )
    except IntegrityError as exc:
        raise Conflict.single(
            "conflict",
            "an identifier of this referral already belongs to another referral",
            "ServiceRequest.identifier",
        ) from exc


def update_in(
    conn: Connection,
    *,
    sender: str,
    referral_id: str,
    document: dict[str, Any],
    if_match: int | None,
    now: datetime,
    options: IntakeOptions,
    supporting: list[dict[str, Any]] | None = None,
) -> UpdateResult:
    """The update, in the caller's transaction (the document is already validated)."""
    fields = read_fields(document)
    current = _current_for_update(conn, referral_id, sender, if_match)
    version = current.version_id + 1
    repo.save_new_version(
        conn,
        referral_id,
        version,
        status=fields.status,
        intent=fields.intent,
        priority=fields.priority,
        patient_ref=fields.patient_ref,
        resource=document,
        supporting=current.supporting if supporting is None else supporting,
        authored_on=fields.authored_on,
        last_updated=now,
    )
    repo.claim_identifiers(conn, sender, referral_id, business_identifiers(document))
    repo.add_event(conn, referral_id, "updated", now, version=version, status=fields.status)
    _after_update(conn, referral_id, fields.status, version, now, options)
    return UpdateResult(version, now)


def _current_for_update(
    conn: Connection, referral_id: str, sender: str, if_match: int | None
) -> repo.ReferralRow:
    current = repo.get_referral(conn, referral_id, for_update=True)
    if current is None or current.sender != sender:
        raise NotFound.single("not-found", f"ServiceRequest/{referral_id} is not known")
    if if_match is not None and if_match != current.version_id:
        raise PreconditionFailed.single(
            "conflict",
            f"version {if_match} is stale; the current version is {current.version_id}",
        )
    return current


def _after_update(
    conn: Connection,
    referral_id: str,
    status: str,
    version: int,
    now: datetime,
    options: IntakeOptions,
) -> None:
    task = repo.get_task_for_referral(conn, referral_id)
    assert task is not None
    if task.state == lifecycle.CANCELLED:
        return
    if status in CANCELLING_STATUSES:
        write_task(conn, referral_id, lifecycle.CANCELLED, now)
        repo.add_event(conn, referral_id, "cancelled", now, by="referrer", status=status)
        outbox.enqueue(
            conn,
            "cancel",
            now=now,
            max_attempts=options.max_attempts,
            referral_id=referral_id,
            dedupe_key=f"cancel:{referral_id}",
        )
    elif status == "active" and lifecycle.may_reevaluate(task.state):
        enqueue_evaluation(conn, referral_id, version, now, options)
