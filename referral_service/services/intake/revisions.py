"""New versions of a referral from its referrer: re-evaluation, or cancellation when revoked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.referrals import ReferralRow
from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain import lifecycle
from referral_service.domain.errors import AlreadyHeld, NotKnown, StaleVersion, Unacceptable
from referral_service.fhir.referral import business_identifiers, read_fields, validate_referral
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake.options import IntakeOptions
from referral_service.services.tasks import write_task

CANCELLING_STATUSES = frozenset({"revoked", "entered-in-error"})


@dataclass(frozen=True)
class UpdateResult:
    version_id: int
    last_updated: datetime


def update_referral(
    runtime: Dependencies,
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
        raise Unacceptable("the resource id does not match the URL", "ServiceRequest.id")
    validate_referral(document, supporting or [])
    try:
        with runtime.unit_of_work() as uow:
            return update_in(
                uow,
                sender=sender,
                referral_id=referral_id,
                document=document,
                if_match=if_match,
                now=now,
                options=options,
                supporting=supporting,
            )
    except KeyTaken as exc:
        raise AlreadyHeld(
            "an identifier of this referral already belongs to another referral",
            "ServiceRequest.identifier",
        ) from exc


def update_in(
    uow: SqlUnitOfWork,
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
    current = _current_for_update(uow, referral_id, sender, if_match)
    version = current.version_id + 1
    uow.referrals.save_new_version(
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
    uow.identifiers.claim(sender, referral_id, business_identifiers(document))
    uow.events.add(referral_id, "updated", now, version=version, status=fields.status)
    _after_update(uow, referral_id, fields.status, version, now, options)
    return UpdateResult(version, now)


def _current_for_update(
    uow: SqlUnitOfWork, referral_id: str, sender: str, if_match: int | None
) -> ReferralRow:
    current = uow.referrals.get(referral_id, for_update=True)
    if current is None or current.sender != sender:
        raise NotKnown(f"ServiceRequest/{referral_id} is not known")
    if if_match is not None and if_match != current.version_id:
        raise StaleVersion(
            f"version {if_match} is stale; the current version is {current.version_id}"
        )
    return current


def _after_update(
    uow: SqlUnitOfWork,
    referral_id: str,
    status: str,
    version: int,
    now: datetime,
    options: IntakeOptions,
) -> None:
    task = uow.tasks.for_referral(referral_id)
    assert task is not None
    if task.state == lifecycle.CANCELLED:
        return
    if status in CANCELLING_STATUSES:
        cancel_by_referrer(uow, referral_id, now, status=status)
    elif status == "active" and lifecycle.may_reevaluate(task.state):
        jobs.evaluate_version(uow, referral_id, version, now)


def cancel_by_referrer(
    uow: SqlUnitOfWork,
    referral_id: str,
    now: datetime,
    status_note: str | None = None,
    **details: str,
) -> None:
    """The referrer withdrew its referral (revoked ServiceRequest, or its Task cancelled): the
    Task cancelled and the appointment, if any, cancelled by the cancel job (on the EHR too)."""
    write_task(uow, referral_id, lifecycle.CANCELLED, now, status_note=status_note)
    uow.events.add(referral_id, "cancelled", now, by="referrer", **details)
    jobs.cancel(uow, referral_id, now)
