"""Bringing the EHR's referral orders in: taking one EHR ServiceRequest (from a notification or
a search) exactly once per version, and the reconciliation searches that catch what the EHR
never sent (a gap in event numbers, a ping, a periodic sweep).

An EHR order becomes a referral of the EHR sender (settings.ehr_sender), keyed by its business
identifiers plus `<ehr base>/ServiceRequest|<id>`. When another sender already holds a referral
with one of those identifiers (the same order POSTed directly), the EHR order is linked to that
referral instead of making a second one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.adapters.ehr.errors import EhrNotFound, EhrRequestError, EhrUnavailable
from referral_service.fhir.instant import format_instant
from referral_service.fhir.notifications import (
    IntakeFilter,
    is_newer,
    split_reference,
    version_stamp,
    with_ehr_identifier,
)
from referral_service.fhir.outcome import FhirError
from referral_service.fhir.referral import business_identifiers, validate_referral
from referral_service.observability import metrics
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake.referrals import IntakeOptions, create_in
from referral_service.services.jobs import Job, RetryLater

log = logging.getLogger(__name__)
CURSOR_KEY = "ehr-reconcile:cursor"
FIRST_LOOK_BACK = timedelta(days=1)
MAX_SUPPORTING_READS = 50
SEARCH_PAGE = "100"


# --- taking one EHR order ----------------------------------------------------------------------


def intake_filter(settings: Any) -> IntakeFilter:
    return IntakeFilter(
        settings.intake_filter_performer,
        settings.intake_filter_category,
        settings.intake_filter_code,
    )


def read_and_take(
    runtime: Dependencies, service_request_id: str, in_hand: tuple[dict, ...] = ()
) -> str:
    try:
        resource = runtime.ehr_client.read("ServiceRequest", service_request_id)
    except EhrNotFound:
        return "skipped (gone from the EHR)"
    return take_service_request(runtime, resource, in_hand)


def take_service_request(
    runtime: Dependencies, resource: dict[str, Any], in_hand: tuple[dict, ...] = ()
) -> str:
    """One EHR ServiceRequest version: ignored, already seen, or received as a referral."""
    if not isinstance(resource.get("id"), str) or not resource["id"]:
        return "skipped (no id)"
    if not intake_filter(runtime.settings).accepts(resource):
        metrics.webhook_event("ignored")
        return "ignored (not for this clinic)"
    seen_key = f"ehr-sr:{resource['id']}"[:128]
    stamp = version_stamp(resource)
    with runtime.unit_of_work(read_only=True) as uow:
        if not is_newer(stamp, uow.state.read(seen_key)):
            metrics.webhook_event("duplicate")
            return "duplicate"
    document = with_ehr_identifier(resource, runtime.settings.ehr_base_url or "urn:ehr")
    supporting = gather_supporting(runtime, document, in_hand)
    try:
        validate_referral(document, supporting)
    except FhirError as exc:
        return _unusable(runtime, seen_key, stamp, exc)
    outcome = _take_once(runtime, seen_key, stamp, document, supporting)
    metrics.webhook_event(outcome)
    return outcome


def _take_once(
    runtime: Dependencies,
    seen_key: str,
    stamp: dict[str, str],
    document: dict,
    supporting: list[dict],
) -> str:
    """The version check and the intake in one transaction: a version is taken once."""
    try:
        with runtime.unit_of_work() as uow:
            if not is_newer(stamp, uow.state.read(seen_key, for_update=True)):
                return "duplicate"
            uow.state.write(seen_key, stamp, runtime.now())
            return _receive(uow, runtime, document, supporting)
    except KeyTaken as exc:
        # Another worker took the same order at the same moment: its transaction won.
        raise RetryLater("concurrent intake of the same EHR order") from exc


def _unusable(runtime: Dependencies, seen_key: str, stamp: dict[str, str], exc: FhirError) -> str:
    """An EHR order that is not a valid referral: remembered so sweeps do not retry it; the
    issue codes only are logged (diagnostics may quote the order)."""
    with runtime.unit_of_work() as uow:
        uow.state.write(seen_key, stamp, runtime.now())
    metrics.webhook_event("invalid")
    log.warning("EHR order is not a valid referral", extra={"issues": [i.code for i in exc.issues]})
    return "invalid referral"


def _receive(
    uow: SqlUnitOfWork, runtime: Dependencies, document: dict, supporting: list[dict]
) -> str:
    settings = runtime.settings
    identifiers = business_identifiers(document)
    holder = _holder(uow, identifiers, settings.ehr_sender)
    if holder is not None and holder[1] != settings.ehr_sender:
        uow.identifiers.claim(settings.ehr_sender, holder[0], identifiers)
        uow.events.add(holder[0], "linked-ehr-order", runtime.now(), source="webhook")
        return "linked"
    options = IntakeOptions(source="webhook")
    result = create_in(
        uow,
        sender=settings.ehr_sender,
        document=document,
        now=runtime.now(),
        options=options,
        supporting=supporting,
    )
    return "created" if result.created else "updated"


def _holder(
    uow: SqlUnitOfWork, identifiers: list[tuple[str, str]], ehr_sender: str
) -> tuple[str, str] | None:
    """(referral id, sender) of any sender's referral with one of these identifiers; the EHR
    sender's own claim wins, so a linked order stays linked."""
    found: list[tuple[str, str]] = []
    for system, value in identifiers:
        found += uow.identifiers.holders(system, value)
    if not found:
        return None
    found.sort(key=lambda row: row[1] != ehr_sender)
    referral_id = found[0][0]
    owner = uow.referrals.get(referral_id)
    return (referral_id, owner.sender) if owner else None


def gather_supporting(
    runtime: Dependencies, document: dict, in_hand: tuple[dict, ...]
) -> list[dict]:
    """What the order references (patient, reasons, supporting info, encounter): taken from the
    notification when it came along, read from the EHR otherwise. Missing ones stay missing."""
    by_ref = {f"{r.get('resourceType')}/{r.get('id')}": r for r in in_hand if r.get("id")}
    found: dict[str, dict] = {}
    for parts in _referenced(document)[:MAX_SUPPORTING_READS]:
        key = "/".join(parts)
        if key in found:
            continue
        resource = by_ref.get(key)
        if resource is None and runtime.ehr_client is not None:
            try:
                resource = runtime.ehr_client.read(*parts)
            except (EhrNotFound, EhrRequestError):
                resource = None
        if resource is not None:
            found[key] = resource
    return list(found.values())


def _referenced(document: dict) -> list[tuple[str, str]]:
    holders = [document.get("subject"), document.get("encounter")]
    for key in ("reasonReference", "supportingInfo"):
        holders += document.get(key) or []
    refs = [split_reference(h.get("reference")) for h in holders if isinstance(h, dict)]
    return [parts for parts in refs if parts is not None]


# --- reconciliation searches -------------------------------------------------------------------


def sync_changes(runtime: Dependencies, *, reason: str) -> str:
    """Take every EHR ServiceRequest changed since the last one seen (by its _lastUpdated)."""
    if runtime.ehr_client is None:
        return f"{reason}: skipped (no EHR configured)"
    with runtime.unit_of_work(read_only=True) as uow:
        cursor = (uow.state.read(CURSOR_KEY) or {}).get("since")
    since = cursor or _whole_seconds(runtime.now() - FIRST_LOOK_BACK)
    params = {"_lastUpdated": f"ge{since}", "_sort": "_lastUpdated", "_count": SEARCH_PAGE}
    newest, taken = _parse_instant(since), 0
    for resource in runtime.ehr_client.search("ServiceRequest", params):
        outcome = take_service_request(runtime, resource)
        taken += outcome in ("created", "updated", "linked")
        updated = _parse_instant(version_stamp(resource).get("lastUpdated"))
        newest = max(newest, updated) if updated and newest else (newest or updated)
    if newest is not None and _whole_seconds(newest) != cursor:
        with runtime.unit_of_work() as uow:
            uow.state.write(CURSOR_KEY, {"since": _whole_seconds(newest)}, runtime.now())
    metrics.webhook_event(f"reconcile-{reason}")
    return f"{reason}: {taken} taken"


def start_cursor(uow: SqlUnitOfWork, now: datetime) -> None:
    """The subscription starts now: later sweeps look from here, not a day back."""
    if uow.state.read(CURSOR_KEY) is None:
        uow.state.write(CURSOR_KEY, {"since": _whole_seconds(now)}, now)


def run_reconciliation(runtime: Dependencies, job: Job) -> str:
    """The `ehr-reconcile` job; a periodic one queues the next period's before it ends."""
    try:
        outcome = sync_changes(runtime, reason=str(job.payload.get("reason", "periodic")))
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc
    if job.payload.get("reason") == "periodic" and runtime.ehr_client is not None:
        with runtime.unit_of_work() as uow:
            jobs.reconcile_periodically(
                uow, runtime.now(), minutes=runtime.settings.reconcile_minutes
            )
    return outcome


def _whole_seconds(moment: datetime) -> str:
    # Whole seconds, rounded down: the next sweep's `ge` sees the newest order again, which
    # the version check then skips, rather than missing one updated in the same second.
    return format_instant(moment, timespec="seconds")


def _parse_instant(value: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        return None
    return moment
