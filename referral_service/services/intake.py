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

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from referral_service.adapters.db import outbox
from referral_service.adapters.db import referrals as repo
from referral_service.domain import lifecycle
from referral_service.fhir.outcome import Conflict, NotFound, PreconditionFailed, Unprocessable
from referral_service.fhir.referral import (
    ReferralFields,
    business_identifiers,
    read_fields,
    validate_referral,
)
from referral_service.fhir.task import TaskView, build_task
from referral_service.services.tasks import write_task

CANCELLING_STATUSES = frozenset({"revoked", "entered-in-error"})


@dataclass(frozen=True)
class IntakeResult:
    referral_id: str
    version_id: int
    created: bool  # False: an existing referral was returned (or given a new version)
    last_updated: datetime


@dataclass(frozen=True)
class IntakeOptions:
    max_attempts: int
    source: str = "direct"


def receive_referral(
    engine: Engine,
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
    try:
        with engine.begin() as conn:
            _insert_new(conn, new_id, sender, document, fields, supporting or [], now, options)
            repo.claim_new_identifiers(conn, sender, new_id, identifiers)
    except IntegrityError:
        with engine.begin() as conn:
            existing = repo.find_by_identifiers(conn, sender, identifiers)
        if existing is None:
            raise
        return _resubmission(engine, existing, sender, document, supporting, now, options)
    return IntakeResult(new_id, 1, True, now)


def create_in(
    conn: Connection,
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
    existing = repo.find_by_identifiers(conn, sender, identifiers)
    if existing is None:
        new_id = str(uuid.uuid4())
        _insert_new(conn, new_id, sender, document, read_fields(document), supporting, now, options)
        repo.claim_new_identifiers(conn, sender, new_id, identifiers)
        return IntakeResult(new_id, 1, True, now)
    current = repo.get_referral(conn, existing)
    assert current is not None
    if _same_content(current.resource, document) and _same_content(current.supporting, supporting):
        return IntakeResult(existing, current.version_id, False, current.last_updated)
    result = update_in(
        conn,
        sender=sender,
        referral_id=existing,
        document=document,
        if_match=None,
        now=now,
        options=options,
        supporting=supporting,
    )
    return IntakeResult(existing, result.version_id, False, now)


def find_existing(engine: Engine, sender: str, identifiers: list[tuple[str, str]]) -> str | None:
    with engine.begin() as conn:
        return repo.find_by_identifiers(conn, sender, identifiers)


def _resubmission(
    engine: Engine,
    referral_id: str,
    sender: str,
    document: dict[str, Any],
    supporting: list[dict[str, Any]] | None,
    now: datetime,
    options: IntakeOptions,
) -> IntakeResult:
    with engine.begin() as conn:
        current = repo.get_referral(conn, referral_id)
    assert current is not None  # identifiers are only claimed together with their referral
    if _same_content(current.resource, document) and (
        supporting is None or _same_content(current.supporting, supporting)
    ):
        return IntakeResult(referral_id, current.version_id, False, current.last_updated)
    result = update_referral(
        engine,
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
    conn: Connection,
    referral_id: str,
    sender: str,
    document: dict[str, Any],
    fields: ReferralFields,
    supporting: list[dict[str, Any]],
    now: datetime,
    options: IntakeOptions,
) -> None:
    repo.insert_referral(
        conn,
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
    repo.insert_task(
        conn,
        id=task_id,
        referral_id=referral_id,
        sender=sender,
        version_id=1,
        status=state.status,
        business_status=state.business_status,
        resource=task,
        last_updated=now,
    )
    repo.add_event(conn, referral_id, "received", now, source=options.source, version=1)
    if fields.status == "active":
        # A new referral cannot have a queued job yet: no dedupe savepoint needed.
        outbox.enqueue(
            conn,
            "evaluate",
            now=now,
            max_attempts=options.max_attempts,
            referral_id=referral_id,
            payload={"version": 1},
        )


def _enqueue_evaluation(
    conn: Connection, referral_id: str, version: int, now: datetime, options: IntakeOptions
) -> None:
    outbox.enqueue(
        conn,
        "evaluate",
        now=now,
        max_attempts=options.max_attempts,
        referral_id=referral_id,
        payload={"version": version},
        dedupe_key=f"evaluate:{referral_id}:{version}",
    )


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
        _enqueue_evaluation(conn, referral_id, version, now, options)
