"""POST /fhir: a referral with its supporting resources in a transaction (all or nothing) or a
batch (entry by entry), and the placer's own Task for it (adopted, as `POST /fhir/Task` does)."""

from __future__ import annotations

from collections.abc import Callable
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
from referral_service.fhir.placer_task import focused_referral, placer_identifiers
from referral_service.fhir.questionnaire_response import check_response, for_form
from referral_service.fhir.referral import validate_referral
from referral_service.fhir.validation import validate_resource
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake import referrals as intake
from referral_service.services.intake import revisions
from referral_service.services.intake.resources import (
    Push,
    adopt_in,
    answered_referral_key,
    patient_key,
)


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
    within: Callable[[SqlUnitOfWork, list[EntryResult]], None] | None = None,
) -> tuple[str, list[EntryResult]]:
    """`within`: more work for a transaction's own unit of work, after its entries (a message's
    placer Task and its receipt commit with the referral, or nothing does)."""
    kind, entries = read_entries(bundle)
    mapping = assign_ids(entries, sender)
    for entry in entries:
        entry.resource = rewrite_references(entry.resource, mapping)
    supporting = [
        _as_stored(e)
        for e in entries
        if e.resource_type not in ("ServiceRequest", "Task") and not e.issues
    ]
    names = _referral_names(entries)
    for entry in entries:
        if not entry.issues:
            entry.issues = _validate(entry, supporting, names, runtime.policy.form)
    if kind == "transaction":
        return kind, _transaction(runtime, entries, supporting, sender, now, options, within)
    # The placer's Tasks last: they name referrals the Bundle's other entries make.
    results: dict[int, EntryResult] = {}
    for entry in _referrals_first(entries):
        referrals = _referral_results(entries, results)
        results[entry.index] = _batch_entry(
            runtime, entry, supporting, sender, now, options, referrals
        )
    return kind, [results[entry.index] for entry in entries]


def _referrals_first(entries: list[BundleEntry]) -> list[BundleEntry]:
    return sorted(entries, key=lambda entry: entry.resource_type == "Task")


def _referral_names(entries: list[BundleEntry]) -> dict[str, BundleEntry]:
    """Every way a Task.focus may name one of the Bundle's ServiceRequests."""
    names: dict[str, BundleEntry] = {}
    for entry in entries:
        if entry.resource_type == "ServiceRequest":
            if entry.full_url:
                names[entry.full_url] = entry
            if entry.resource.get("id"):
                names[f"ServiceRequest/{entry.resource['id']}"] = entry
    return names


def _referral_results(
    entries: list[BundleEntry], results: dict[int, EntryResult]
) -> dict[str, EntryResult]:
    return {
        name: results[entry.index]
        for name, entry in _referral_names(entries).items()
        if entry.index in results
    }


def _focus(entry: BundleEntry) -> str:
    focus = entry.resource.get("focus")
    return str(focus.get("reference") or "") if isinstance(focus, dict) else ""


def _as_stored(entry: BundleEntry) -> dict[str, Any]:
    resource = dict(entry.resource)
    resource["id"] = entry.assigned_id
    return resource


def _validate(
    entry: BundleEntry,
    supporting: list[dict[str, Any]],
    names: dict[str, BundleEntry],
    form: ReferralForm | None,
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
        issues = prefix_issues(validate_resource(entry.resource), entry.index)
        if entry.resource_type == "Task" and not issues:
            placer_identifiers(entry.resource)
            if _focus(entry) not in names:
                focused_referral(entry.resource)  # else one already on this server
        return issues
    except FhirError as exc:
        return prefix_issues(exc.issues, entry.index)


def _transaction(
    runtime: Dependencies,
    entries: list[BundleEntry],
    supporting: list[dict[str, Any]],
    sender: str,
    now: datetime,
    options: intake.IntakeOptions,
    within: Callable[[SqlUnitOfWork, list[EntryResult]], None] | None = None,
) -> list[EntryResult]:
    issues = [issue for entry in entries for issue in entry.issues]
    if issues:
        raise Unprocessable(*issues)
    for attempt in range(2):
        try:
            with runtime.unit_of_work() as uow:
                results: dict[int, EntryResult] = {}
                for entry in _referrals_first(entries):
                    referrals = _referral_results(entries, results)
                    results[entry.index] = _apply(
                        uow, entry, supporting, sender, now, options, referrals
                    )
                ordered = [results[entry.index] for entry in entries]
                if within is not None:
                    within(uow, ordered)
                return ordered
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
    referrals: dict[str, EntryResult],
) -> EntryResult:
    if entry.issues:
        return EntryResult("422 Unprocessable Entity", outcome=tuple(entry.issues))
    try:
        with runtime.unit_of_work() as uow:
            return _apply(uow, entry, supporting, sender, now, options, referrals)
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
    referrals: dict[str, EntryResult],
) -> EntryResult:
    if entry.resource_type == "Task":
        return _adopt(uow, entry, sender, now, referrals)
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


def _adopt(
    uow: SqlUnitOfWork,
    entry: BundleEntry,
    sender: str,
    now: datetime,
    referrals: dict[str, EntryResult],
) -> EntryResult:
    """The placer's Task becomes the referral's: 201 when the Bundle made that referral."""
    made = referrals.get(_focus(entry))
    if made is not None and made.referral_id is None:
        raise Unprocessable.single(
            "processing",
            f"Bundle.entry[{entry.index}]: the ServiceRequest in Task.focus was not accepted",
            f"Bundle.entry[{entry.index}].resource.focus",
        )
    referral_id = made.referral_id if made else focused_referral(entry.resource)
    assert referral_id is not None
    task = adopt_in(uow, Push(sender, now), referral_id, placer_identifiers(entry.resource))
    version = int(task["meta"]["versionId"])
    created = made is not None and made.status.startswith("201")
    return EntryResult(
        "201 Created" if created else "200 OK",
        f"Task/{task['id']}/_history/{version}",
        f'W/"{version}"',
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
    answered = None
    if entry.resource_type == "QuestionnaireResponse":
        # Answers naming no patient here are filed under the referral they are `basedOn`.
        patient_ref = patient_key(entry.resource_type, entry.assigned_id, resource)
        answered = answered_referral_key(resource)
    uow.resources.insert_resource(
        StoredResource(
            entry.resource_type, entry.assigned_id, sender, 1, resource, patient_ref, now
        )
    )
    if answered is not None:
        _resume_answered(uow, sender, answered, f"{entry.resource_type}/{entry.assigned_id}", now)


def _resume_answered(
    uow: SqlUnitOfWork, sender: str, referral_key: str, answers: str, now: datetime
) -> None:
    """Answers `basedOn` one of the sender's referrals on hold for information resume it (a
    referral this Bundle makes is not on hold: its first evaluation reads them)."""
    for referral_id in uow.resources.referrals_waiting_on(sender, referral_key):
        task = uow.tasks.for_referral(referral_id)
        if task is not None and task.state.business_status == "needs-information":
            uow.events.add(referral_id, "answers-received", now, response=answers.split("/")[1])
            jobs.evaluate_after_change(uow, referral_id, f"{answers}/_history/1", now)
