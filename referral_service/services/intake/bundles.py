"""POST /fhir: a referral with its supporting resources in a transaction (all or nothing) or a
batch (entry by entry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.resources import StoredResource
from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain.errors import Contended, DomainError
from referral_service.domain.referral_form import ReferralForm
from referral_service.fhir.bundle import (
    BundleEntry,
    assign_ids,
    prefix_issues,
    read_entries,
    rewrite_references,
)
from referral_service.fhir.outcome import FhirError, Issue, Unprocessable, as_fhir_error
from referral_service.fhir.questionnaire_response import check_response, for_form
from referral_service.fhir.referral import validate_referral
from referral_service.fhir.validation import validate_resource
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake import referrals as intake
from referral_service.services.intake import revisions


@dataclass(frozen=True)
class EntryResult:
    status: str  # "201 Created", "200 OK", "422 Unprocessable Entity"...
    location: str | None = None
    etag: str | None = None
    outcome: tuple[Issue, ...] = ()
    referral_id: str | None = None


def process_bundle(
    runtime: Dependencies,
    *,
    sender: str,
    bundle: dict[str, Any],
    now: datetime,
    options: intake.IntakeOptions,
) -> tuple[str, list[EntryResult]]:
    kind, entries = read_entries(bundle)
    mapping = assign_ids(entries, sender)
    for entry in entries:
        entry.resource = rewrite_references(entry.resource, mapping)
    supporting = [
        _as_stored(e) for e in entries if e.resource_type != "ServiceRequest" and not e.issues
    ]
    for entry in entries:
        if not entry.issues:
            entry.issues = _validate(entry, supporting, runtime.policy.form)
    if kind == "transaction":
        return kind, _transaction(runtime, entries, supporting, sender, now, options)
    return kind, [_batch_entry(runtime, e, supporting, sender, now, options) for e in entries]


def _as_stored(entry: BundleEntry) -> dict[str, Any]:
    resource = dict(entry.resource)
    resource["id"] = entry.assigned_id
    return resource


def _validate(
    entry: BundleEntry, supporting: list[dict[str, Any]], form: ReferralForm | None
) -> list[Issue]:
    try:
        if entry.resource_type == "ServiceRequest":
            validate_referral(entry.resource, supporting)
            return []
        if entry.resource_type == "QuestionnaireResponse" and for_form(entry.resource, form):
            issues = validate_resource(entry.resource)
            if not issues:
                check_response(entry.resource, form)  # type: ignore[arg-type]
            return prefix_issues(issues, entry.index)
        return prefix_issues(validate_resource(entry.resource), entry.index)
    except FhirError as exc:
        return prefix_issues(exc.issues, entry.index)


def _transaction(
    runtime: Dependencies,
    entries: list[BundleEntry],
    supporting: list[dict[str, Any]],
    sender: str,
    now: datetime,
    options: intake.IntakeOptions,
) -> list[EntryResult]:
    issues = [issue for entry in entries for issue in entry.issues]
    if issues:
        raise Unprocessable(*issues)
    for attempt in range(2):
        try:
            with runtime.unit_of_work() as uow:
                return [_apply(uow, e, supporting, sender, now, options) for e in entries]
        except KeyTaken as exc:
            # A concurrent twin of this transaction won the identifier: run again, and the
            # second pass finds the referral it made instead of colliding.
            if attempt == 1:
                raise Contended("the transaction conflicted; retry") from exc
    raise AssertionError("unreachable")


def _batch_entry(
    runtime: Dependencies,
    entry: BundleEntry,
    supporting: list[dict[str, Any]],
    sender: str,
    now: datetime,
    options: intake.IntakeOptions,
) -> EntryResult:
    if entry.issues:
        return EntryResult("422 Unprocessable Entity", outcome=tuple(entry.issues))
    try:
        with runtime.unit_of_work() as uow:
            return _apply(uow, entry, supporting, sender, now, options)
    except DomainError as refusal:
        exc = as_fhir_error(refusal)
        return EntryResult(f"{exc.status} {_reason(exc.status)}", outcome=exc.issues)
    except FhirError as exc:
        return EntryResult(f"{exc.status} {_reason(exc.status)}", outcome=exc.issues)
    except KeyTaken:
        return EntryResult("409 Conflict", outcome=(Issue("conflict", "retry this entry"),))


def _reason(status: int) -> str:
    return {
        404: "Not Found",
        409: "Conflict",
        412: "Precondition Failed",
        422: "Unprocessable Entity",
    }.get(status, "Bad Request")


def _apply(
    uow: SqlUnitOfWork,
    entry: BundleEntry,
    supporting: list[dict[str, Any]],
    sender: str,
    now: datetime,
    options: intake.IntakeOptions,
) -> EntryResult:
    if entry.resource_type != "ServiceRequest":
        _store_supporting(uow, entry, sender, now)
        location = f"{entry.resource_type}/{entry.assigned_id}/_history/1"
        return EntryResult("201 Created", location, 'W/"1"')
    if entry.method == "PUT":
        referral_id = entry.url.rstrip("/").split("/")[-1]
        updated = revisions.update_in(
            uow,
            sender=sender,
            referral_id=referral_id,
            document=entry.resource,
            if_match=None,
            now=now,
            options=options,
            supporting=supporting,
        )
        return _referral_result("200 OK", referral_id, updated.version_id)
    result = intake.create_in(
        uow,
        sender=sender,
        document=entry.resource,
        now=now,
        options=options,
        supporting=supporting,
    )
    return _referral_result(
        "201 Created" if result.created else "200 OK", result.referral_id, result.version_id
    )


def _referral_result(status: str, referral_id: str, version: int) -> EntryResult:
    return EntryResult(
        status,
        f"ServiceRequest/{referral_id}/_history/{version}",
        f'W/"{version}"',
        referral_id=referral_id,
    )


def _store_supporting(uow: SqlUnitOfWork, entry: BundleEntry, sender: str, now: datetime) -> None:
    assert entry.assigned_id is not None  # assign_ids gave every entry one
    if uow.resources.exists(entry.resource_type, entry.assigned_id):
        return  # the same Bundle again: same content, same id
    resource = _as_stored(entry)
    subject = resource.get("subject") or resource.get("patient") or {}
    patient_ref = subject.get("reference") if isinstance(subject, dict) else None
    uow.resources.insert_resource(
        StoredResource(
            entry.resource_type, entry.assigned_id, sender, 1, resource, patient_ref, now
        )
    )
