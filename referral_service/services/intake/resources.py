"""Resources pushed one by one (BSeR REST push), each owned by its sender: writes, reads,
on-hold referrals resumed when their data comes, the placer's Task. What evaluation may use of
them: services/intake/supporting.py."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from referral_service.adapters.db.queries import Page, render_referral
from referral_service.adapters.db.resources import StoredResource
from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain.errors import (
    AlreadyHeld,
    NotKnown,
    StaleVersion,
    TooLong,
    Unacceptable,
)
from referral_service.domain.referral_form import ReferralForm
from referral_service.fhir.questionnaire_response import check_response, for_form
from referral_service.fhir.resource_types import PATIENT_ELEMENT, SUPPORTING_TYPES
from referral_service.fhir.search import Criteria
from referral_service.fhir.validation import expect_resource_type, require_valid
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies

PUSHED_TYPES = SUPPORTING_TYPES

# A relative reference `Type/id` (optionally `/_history/n`): absolute ones name other servers.
_RELATIVE = re.compile(r"^([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$")


@dataclass(frozen=True)
class Push:  # who writes, and when
    sender: str
    now: datetime


@dataclass(frozen=True)
class Written:
    stored: StoredResource
    created: bool  # False: an existing resource was returned (or given a new version)


def relative_reference(reference: Any) -> tuple[str, str] | None:
    """(type, id) of a relative reference on this server, else None."""
    match = _RELATIVE.match(reference) if isinstance(reference, str) else None
    return (match.group(1), match.group(2)) if match else None


def patient_key(resource_type: str, resource_id: str, document: dict[str, Any]) -> str | None:
    """The key evaluation finds a stored resource under: `Patient/x` for the patient it is
    about (a Patient is about itself). Answers to the form that name no Patient (their
    referral's is contained in it, `#p`, which means nothing outside it) are filed under the
    `ServiceRequest/x` they are `basedOn`; every look-up by key is the sender's own."""
    if resource_type == "Patient":
        return f"Patient/{resource_id}"
    element = document.get(PATIENT_ELEMENT.get(resource_type, ""))
    found = relative_reference(element.get("reference")) if isinstance(element, dict) else None
    if found and found[0] == "Patient":
        return f"Patient/{found[1]}"
    if resource_type == "QuestionnaireResponse":
        return answered_referral_key(document)
    return None


def answered_referral_key(document: dict[str, Any]) -> str | None:
    """`ServiceRequest/x` when the answers are `basedOn` exactly one ServiceRequest here."""
    named = {
        found[1]
        for ref in document.get("basedOn") or []
        if isinstance(ref, dict)
        and (found := relative_reference(ref.get("reference")))
        and found[0] == "ServiceRequest"
    }
    return f"ServiceRequest/{named.pop()}" if len(named) == 1 else None


def patient_reference(patient_ref: str | None) -> dict[str, str] | None:
    """A referral's patient as a reference other resources may carry: not a contained `#p`."""
    found = relative_reference(patient_ref)
    return {"reference": f"Patient/{found[1]}"} if found and found[0] == "Patient" else None


def identifiers(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(system, value) pairs; QuestionnaireResponse has a single identifier, not a list."""
    given = document.get("identifier")
    items = [given] if isinstance(given, dict) else given if isinstance(given, list) else []
    pairs = [(i.get("system"), i.get("value")) for i in items if isinstance(i, dict)]
    return [(s, v) for s, v in pairs if isinstance(s, str) and isinstance(v, str) and s and v]


def render(stored: StoredResource) -> dict[str, Any]:
    return render_referral(stored.resource, stored.id, stored.version_id, stored.last_updated)


def _validated(
    resource_type: str, document: dict[str, Any], form: ReferralForm | None = None
) -> None:
    expect_resource_type(document, resource_type)
    require_valid(document)
    if resource_type == "QuestionnaireResponse" and form is not None and for_form(document, form):
        check_response(document, form)  # answers to the clinic's form must fit it (422)
    if any(len(part) > 512 for pair in identifiers(document) for part in pair):
        # The identifier index holds 512 characters of system and of value.
        raise TooLong(
            "identifier system and value are limited to 512 characters",
            f"{resource_type}.identifier",
        )


def _new_version(
    resource_type: str, resource_id: str, push: Push, version: int, document: dict
) -> StoredResource:
    body = {**document, "id": resource_id}
    if isinstance(body.get("meta"), dict):  # the sender's profiles and tags stay; versions are ours
        meta = {k: v for k, v in body["meta"].items() if k not in ("versionId", "lastUpdated")}
        body["meta"] = meta
    about = patient_key(resource_type, resource_id, body)
    return StoredResource(resource_type, resource_id, push.sender, version, body, about, push.now)


# More work for the write's own unit of work, once the resource is stored (a message's record).
Within = Callable[[SqlUnitOfWork, StoredResource], None]


def create(
    runtime: Dependencies,
    push: Push,
    resource_type: str,
    document: dict,
    wanted: tuple | None,
    within: Within | None = None,
) -> Written:
    """Store a new resource; `wanted` (If-None-Exist) or an identifier the sender already
    used returns the resource it made (a different body under a used one: a new version).
    `within` commits with the write, or with nothing when the resource was already there."""
    _validated(resource_type, document, runtime.policy.form)
    if resource_type == "QuestionnaireResponse" and for_form(document, runtime.policy.form):
        document = _about_its_referral(runtime, push.sender, document)
    if wanted is not None and (found := _find(runtime, push.sender, resource_type, [wanted])):
        return Written(_kept(runtime, found, within), False)
    stored = _new_version(resource_type, str(uuid.uuid4()), push, 1, document)
    body = stored.resource
    claimed = False
    try:
        with runtime.unit_of_work() as uow:
            uow.resources.insert_resource(stored)
            uow.resources.claim_identifiers(
                push.sender, resource_type, stored.id, identifiers(body)
            )
            claimed = True
            _resume_waiting(uow, stored)
            if within is not None:
                within(uow, stored)
    except KeyTaken:
        if claimed:
            raise  # `within`'s own key (a message recorded by a concurrent resend)
        existing = _find(runtime, push.sender, resource_type, identifiers(document))
        if existing is None:
            raise
        if wanted is not None or _canonical(existing.resource) == _canonical(document):
            return Written(_kept(runtime, existing, within), False)
        draft = _new_version(resource_type, existing.id, push, 0, document)
        return Written(_update(runtime, draft, None, push, within), False)
    return Written(stored, True)


def _kept(runtime: Dependencies, stored: StoredResource, within: Within | None) -> StoredResource:
    """A resource already stored, returned as is: only `within`'s work is left to commit."""
    if within is not None:
        with runtime.unit_of_work() as uow:
            within(uow, stored)
    return stored


def _about_its_referral(runtime: Dependencies, sender: str, document: dict) -> dict:
    """Answers to the form `basedOn` a referral must name one of the sender's own; without a
    `subject` they are about that referral's patient (so its evaluation reads them)."""
    named = [
        found
        for ref in document.get("basedOn") or []
        if isinstance(ref, dict)
        and (found := relative_reference(ref.get("reference")))
        and found[0] == "ServiceRequest"
    ]
    for _, referral_id in named:
        with runtime.unit_of_work(read_only=True) as uow:
            referral = uow.referrals.get(referral_id)
        if referral is None or referral.sender != sender:
            raise Unacceptable(
                "QuestionnaireResponse.basedOn must name one of your ServiceRequests",
                "QuestionnaireResponse.basedOn",
            )
        subject = patient_reference(referral.patient_ref)
        if "subject" not in document and subject is not None:
            document = {**document, "subject": subject}
    return document


def _find(
    runtime: Dependencies, sender: str, resource_type: str, wanted: list
) -> StoredResource | None:
    with runtime.unit_of_work(read_only=True) as uow:
        return uow.resources.find_by_identifiers(sender, resource_type, wanted)


def _canonical(value: dict[str, Any]) -> str:
    kept = {k: v for k, v in value.items() if k not in ("id", "meta")}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def update(
    runtime: Dependencies,
    push: Push,
    resource_type: str,
    resource_id: str,
    document: dict,
    if_match: int | None,
) -> Written:
    """A new version of one of the sender's resources (`PUT` with optional `If-Match`)."""
    _validated(resource_type, document, runtime.policy.form)
    if document.get("id") not in (None, resource_id):
        raise Unacceptable("the resource id does not match the URL", f"{resource_type}.id")
    draft = _new_version(resource_type, resource_id, push, 0, document)
    return Written(_update(runtime, draft, if_match, push), False)


def _update(
    runtime: Dependencies,
    draft: StoredResource,
    if_match: int | None,
    push: Push,
    within: Within | None = None,
) -> StoredResource:
    """Save `draft` (its version number is decided here) over the stored resource."""
    claimed = False
    try:
        with runtime.unit_of_work() as uow:
            current = uow.resources.get(draft.resource_type, draft.id, for_update=True)
            version = _check_writable(current, draft, if_match) + 1
            stored = replace(draft, version_id=version)
            uow.resources.save_version(stored)
            uow.resources.claim_identifiers(
                stored.sender, stored.resource_type, stored.id, identifiers(stored.resource)
            )
            claimed = True
            _resume_waiting(uow, stored)
            if within is not None:
                within(uow, stored)
            return stored
    except KeyTaken as exc:
        if claimed:
            raise  # `within`'s own key (a message recorded by a concurrent resend)
        raise AlreadyHeld(
            f"an identifier of this resource already belongs to another {draft.resource_type}",
            f"{draft.resource_type}.identifier",
        ) from exc


def _check_writable(
    current: StoredResource | None, draft: StoredResource, if_match: int | None
) -> int:
    """The current version number, when the sender may write over it."""
    if current is None or current.sender != draft.sender:
        raise NotKnown(f"{draft.resource_type}/{draft.id} is not known")
    if if_match is not None and if_match != current.version_id:
        raise StaleVersion(
            f"version {if_match} is stale; the current version is {current.version_id}"
        )
    return current.version_id


def _resume_waiting(uow: SqlUnitOfWork, stored: StoredResource) -> None:
    """New data about a patient: re-evaluate the sender's referrals on hold for that patient.
    The dedupe key names this version, so each change queues one evaluation per referral."""
    if stored.patient_ref is None:
        return
    change = f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
    for referral_id in uow.resources.referrals_waiting_on(stored.sender, stored.patient_ref):
        jobs.evaluate_after_change(uow, referral_id, change, stored.last_updated)


def read(runtime: Dependencies, scope: str | None, resource_type: str, resource_id: str) -> dict:
    """One resource; another sender's is "not found", never "forbidden": ids must not leak."""
    with runtime.unit_of_work(read_only=True) as uow:
        stored = uow.resources.get(resource_type, resource_id)
    if stored is None or (scope is not None and stored.sender != scope):
        raise NotKnown(f"{resource_type}/{resource_id} is not known")
    return render(stored)


def search(
    runtime: Dependencies, scope: str | None, resource_type: str, criteria: Criteria, now: datetime
) -> Page:
    with runtime.unit_of_work(read_only=True) as uow:
        rows, total = uow.resources.search(resource_type, scope, criteria, now)
    return Page([render(row) for row in rows], total)


def adopt_placer_task(runtime: Dependencies, push: Push, referral_id: str, placer: list) -> dict:
    """The referrer's Task for its referral is the referral's Task: the referrer's
    identifiers join it (once), so it finds the clinic's answer under its own identifiers."""
    with runtime.unit_of_work() as uow:
        return adopt_in(uow, push, referral_id, placer)


def adopt_in(uow: SqlUnitOfWork, push: Push, referral_id: str, placer: list) -> dict:
    """The adoption, in the caller's transaction (a transaction Bundle's, say)."""
    # Locking the referral serializes this with the worker's writes of the Task.
    referral = uow.referrals.get(referral_id, for_update=True)
    task = uow.tasks.for_referral(referral_id)
    if referral is None or referral.sender != push.sender or task is None:
        raise Unacceptable("Task.focus must be one of your ServiceRequests", "Task.focus")
    joined = _joined(task.resource.get("identifier", []), placer)
    if joined is None:
        return task.resource
    version = task.version_id + 1
    resource = render_referral({**task.resource, "identifier": joined}, task.id, version, push.now)
    try:
        with uow.savepoint():
            uow.tasks.save(task.id, task.state, resource, version, push.now)
            uow.resources.claim_identifiers(push.sender, "Task", task.id, identifiers(resource))
    except KeyTaken as exc:
        raise AlreadyHeld(
            "an identifier of this Task already names another Task", "Task.identifier"
        ) from exc
    return resource


def _joined(held: list[dict], placer: list[dict]) -> list[dict] | None:
    """The Task's identifiers with the placer's new ones, or None when none is new."""
    known = set(identifiers({"identifier": held}))
    added = [item for item in placer if not set(identifiers({"identifier": [item]})) <= known]
    return held + added if added else None
