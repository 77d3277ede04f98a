"""Answers to the clinic's referral form for one referral: checked against the form, stored
as the sender's QuestionnaireResponse, and the referral evaluated again in the same unit of
work. The web form uses it; message and placer-Task paths can call it the same way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.resources import StoredResource
from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain import lifecycle
from referral_service.domain.eligibility.form_items import items_for
from referral_service.domain.errors import AlreadyHeld, NotKnown, Unacceptable, WrongState
from referral_service.fhir.questionnaire_response import check_response
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.form_links import FormLinks, LinkRefused, needs_round
from referral_service.services.intake.resources import (
    Within,
    identifiers,
    patient_key,
    patient_reference,
)

# The identifier a web-form submission carries: the digest of the link it came through, so a
# link is used once (a second submission collides on the sender's identifier index).
FORM_LINK_SYSTEM = "https://referral-service.dev/form-link"


@dataclass(frozen=True)
class Taken:
    response_id: str
    referral_id: str


def take_questionnaire_response(
    runtime: Dependencies,
    *,
    sender: str,
    referral_id: str,
    document: dict[str, Any],
    now: datetime,
    link_digest: str | None = None,
    within: Within | None = None,
) -> Taken:
    """Store the sender's answers about its referral and evaluate the referral again at once.
    Raises Unprocessable (answers not fitting the form), NotKnown (not the sender's referral),
    WrongState (the referral is not waiting for information), AlreadyHeld (a link used twice).
    `within` runs in the same unit of work once the answers are stored (a message's record)."""
    form = runtime.policy.form
    if form is None:
        raise Unacceptable(
            "this clinic has no referral form", "QuestionnaireResponse.questionnaire"
        )
    check_response(document, form)
    try:
        with runtime.unit_of_work() as uow:
            stored = store_answers(
                uow,
                sender=sender,
                referral_id=referral_id,
                document=document,
                now=now,
                link_digest=link_digest,
            )
            change = f"QuestionnaireResponse/{stored.id}/_history/1"
            jobs.evaluate_after_change(uow, referral_id, change, now)
            if within is not None:
                within(uow, stored)
    except KeyTaken as exc:
        if link_digest is None:
            raise  # not the link's identifier: the caller's own key (a message id)
        raise AlreadyHeld("this form link has been used", "QuestionnaireResponse") from exc
    return Taken(stored.id, referral_id)


def store_answers(
    uow: SqlUnitOfWork,
    *,
    sender: str,
    referral_id: str,
    document: dict[str, Any],
    now: datetime,
    link_digest: str | None = None,
) -> StoredResource:
    """Within the caller's unit of work: answers already checked against the form, stored as
    the sender's. The caller queues the evaluation they call for (one per change: a placer
    Task update that carries them queues its own). Raises NotKnown, WrongState."""
    response_id = str(uuid.uuid4())
    body = {**document, "id": response_id}
    if link_digest is not None:
        body["identifier"] = {"system": FORM_LINK_SYSTEM, "value": link_digest}
    referral = uow.referrals.get(referral_id, for_update=True)
    task = uow.tasks.for_referral(referral_id)
    if referral is None or referral.sender != sender or task is None:
        raise NotKnown(f"ServiceRequest/{referral_id} is not known")
    if task.state.business_status != "needs-information" or not lifecycle.may_reevaluate(
        task.state
    ):
        raise WrongState("this referral is not waiting for information")
    body.setdefault("basedOn", [{"reference": f"ServiceRequest/{referral_id}"}])
    subject = patient_reference(referral.patient_ref)
    if subject is not None and "subject" not in body:
        body["subject"] = subject
    # Filed under the referral when they name no patient (it is contained in the referral).
    about = patient_key("QuestionnaireResponse", response_id, body) or (
        f"ServiceRequest/{referral_id}"
    )
    stored = StoredResource("QuestionnaireResponse", response_id, sender, 1, body, about, now)
    uow.resources.insert_resource(stored)
    uow.resources.claim_identifiers(sender, "QuestionnaireResponse", response_id, identifiers(body))
    uow.events.add(referral_id, "answers-received", now, response=response_id)
    return stored


@dataclass(frozen=True)
class OpenForm:
    """A web-form link that may be used now: its referral, what to ask, its digest."""

    referral_id: str
    sender: str
    link_ids: tuple[str, ...]  # the form's items that settle what the referral misses
    digest: str
    authored_on: datetime | None


def open_form_link(runtime: Dependencies, links: FormLinks, token: str) -> OpenForm:
    """Check a link: signature, date, the referral still waiting in the same round, unused.
    Raises LinkRefused naming why."""
    claim = links.read(token)
    form = runtime.policy.form
    with runtime.unit_of_work(read_only=True) as uow:
        referral = uow.referrals.get(claim.referral_id)
        task = uow.tasks.for_referral(claim.referral_id)
        if referral is None or task is None or form is None:
            raise LinkRefused("invalid")
        if task.state.business_status != "needs-information" or (
            needs_round(referral.version_id, referral.decision) != claim.round
        ):
            raise LinkRefused("superseded")
        used = uow.resources.find_by_identifiers(
            referral.sender, "QuestionnaireResponse", [(FORM_LINK_SYSTEM, claim.digest)]
        )
    if used is not None:
        raise LinkRefused("used")
    missing = referral.decision.missing if referral.decision is not None else ()
    asked = {link for m in missing for link in items_for(form, m, form.pregnancy_days)}
    ordered = tuple(link for link in form.items if link in asked)
    return OpenForm(claim.referral_id, referral.sender, ordered, claim.digest, referral.authored_on)
