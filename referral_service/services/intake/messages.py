"""$process-message: a FHIR message taken in under its sender. A referral message goes through
the transaction intake (the ServiceRequest with its supporting resources, all or nothing), its
placer Task adopted in the same transaction; a registration stores the Patient as the REST push
does; answers to the referral form (I13) are taken as the web form's are; any other event is
answered `fatal-error`. Each response is recorded under the message id in the unit of work that
stores what the message brings, so a resend is answered the same and changes nothing; a
different message under a used id is refused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.resources import StoredResource
from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain.errors import Contended, Unacceptable
from referral_service.fhir.instant import format_instant
from referral_service.fhir.message import Message, as_transaction, renumbered, response_message
from referral_service.fhir.outcome import Conflict, FhirError, Issue
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake import bundles, resources
from referral_service.services.intake.bundles import EntryResult
from referral_service.services.intake.form_answers import take_questionnaire_response
from referral_service.services.intake.options import IntakeOptions


@dataclass(frozen=True)
class Receiving:  # who sent the message, when, and where this service answers from
    sender: str
    now: datetime
    base: str  # the service's public base URL, for absolute references in the response

    @property
    def endpoint(self) -> str:
        return f"{self.base}/fhir/$process-message"


@dataclass(frozen=True)
class Answer:
    response: dict[str, Any]  # the response message Bundle
    code: str  # ok | fatal-error
    replayed: bool  # True: a resend, answered from the record
    referral_created: bool = False


def process_message(
    runtime: Dependencies, receiving: Receiving, message: Message, placer: list[dict[str, Any]]
) -> Answer:
    """`placer`: the placer Task's identifiers, typed PLAC, when the focus is a Task.
    Raises Conflict (409, `duplicate`) for a different message under a used id."""
    known = _recorded(runtime, receiving.sender, message)
    if known is not None:
        return known
    try:
        if message.kind == "referral":
            return _referral(runtime, receiving, message, placer)
        if message.kind == "registration":
            return _registration(runtime, receiving, message)
        if message.kind == "answers":
            return _answers(runtime, receiving, message)
        return _unknown_event(runtime, receiving, message)
    except (KeyTaken, Contended):
        # The same message, sent twice at once: the twin that committed answers both.
        known = _recorded(runtime, receiving.sender, message)
        if known is None:
            raise
        return known


def _recorded(runtime: Dependencies, sender: str, message: Message) -> Answer | None:
    """The recorded answer when this is a resend; a different message under the id is refused
    (FHIR messaging: the id names one message; the first one's record stays)."""
    with runtime.unit_of_work(read_only=True) as uow:
        receipt = uow.messages.receipt(sender, message.message_id)
    if receipt is None:
        return None
    if receipt.content_digest not in (None, message.content_digest):
        raise Conflict(
            Issue(
                "duplicate",
                f"the message id {message.message_id} names another message received before; "
                "send this one under a new Bundle.id",
                ("Bundle.id",),
            )
        )
    response = receipt.response
    return Answer(response, response["entry"][0]["resource"]["response"]["code"], True)


def _respond(
    receiving: Receiving,
    message: Message,
    code: str,
    focus: list[dict[str, Any]] | None = None,
    issues: tuple[Issue, ...] = (),
) -> dict[str, Any]:
    return response_message(
        message,
        response_id=str(uuid.uuid4()),
        code=code,
        timestamp=format_instant(receiving.now),
        endpoint=receiving.endpoint,
        focus=focus,
        issues=issues,
    )


def _record(uow: SqlUnitOfWork, receiving: Receiving, message: Message, answer: Answer) -> None:
    uow.messages.record(
        receiving.sender,
        message.message_id,
        answer.code,
        answer.response,
        receiving.now,
        message.content_digest,
    )


def _referral(
    runtime: Dependencies, receiving: Receiving, message: Message, placer: list[dict[str, Any]]
) -> Answer:
    answers: list[Answer] = []

    def within(uow: SqlUnitOfWork, results: list[EntryResult]) -> None:
        made = next(r for r in results if r.referral_id is not None)
        assert made.referral_id is not None
        push = resources.Push(receiving.sender, receiving.now)
        if message.placer_task is not None:
            task = resources.adopt_in(uow, push, made.referral_id, placer)
        else:
            held = uow.tasks.for_referral(made.referral_id)
            assert held is not None  # every referral is created with its Task
            task = held.resource
        entry = {"fullUrl": f"{receiving.base}/fhir/Task/{task['id']}", "resource": task}
        response = _respond(receiving, message, "ok", [entry])
        answer = Answer(response, "ok", False, made.status.startswith("201"))
        _record(uow, receiving, message, answer)
        answers.append(answer)

    try:
        bundles.process_bundle(
            runtime,
            sender=receiving.sender,
            bundle=as_transaction(message),
            now=receiving.now,
            options=IntakeOptions(source="message"),
            within=within,
        )
    except FhirError as refusal:
        raise renumbered(refusal, message) from None
    return answers[-1]


def _registration(runtime: Dependencies, receiving: Receiving, message: Message) -> Answer:
    """The Patient stored as the REST push does, the receipt recorded in the same unit of work:
    a crash between them cannot leave a Patient that a resend would store again."""
    assert message.focus is not None
    push = resources.Push(receiving.sender, receiving.now)
    answers: list[Answer] = []
    within = _recording_ok(receiving, message, "Patient", answers)
    resources.create(runtime, push, "Patient", _without_id(message.focus), None, within)
    return answers[-1]


def _recording_ok(
    receiving: Receiving, message: Message, resource_type: str, answers: list[Answer]
) -> resources.Within:
    """A `within` hook: the stored resource's "ok" response recorded as the message's answer in
    the storing unit of work (and kept in `answers` for the caller)."""

    def within(uow: SqlUnitOfWork, stored: StoredResource) -> None:
        entry = {
            "fullUrl": f"{receiving.base}/fhir/{resource_type}/{stored.id}",
            "resource": resources.render(stored),
        }
        answer = Answer(_respond(receiving, message, "ok", [entry]), "ok", False)
        _record(uow, receiving, message, answer)
        answers.append(answer)

    return within


def _answers(runtime: Dependencies, receiving: Receiving, message: Message) -> Answer:
    """REF^I13: the focused QuestionnaireResponse answers the sender's referral waiting for
    information (`basedOn` its ServiceRequest or its Task), taken as the web form's answers are;
    refused like a referral message (4xx, nothing stored or recorded)."""
    assert message.focus is not None
    document = _without_id(message.focus)
    referral_id = _answered_referral(runtime, receiving.sender, document)
    document["basedOn"] = [{"reference": f"ServiceRequest/{referral_id}"}]
    answers: list[Answer] = []
    within = _recording_ok(receiving, message, "QuestionnaireResponse", answers)
    take_questionnaire_response(
        runtime,
        sender=receiving.sender,
        referral_id=referral_id,
        document=document,
        now=receiving.now,
        within=within,
    )
    return answers[-1]


def _answered_referral(runtime: Dependencies, sender: str, document: dict[str, Any]) -> str:
    """The sender's referral the answers are `basedOn`: its ServiceRequest, or its Task."""
    named = [
        found
        for ref in document.get("basedOn") or []
        if isinstance(ref, dict)
        and (found := resources.relative_reference(ref.get("reference")))
        and found[0] in ("ServiceRequest", "Task")
    ]
    if len(named) == 1:
        kind, found_id = named[0]
        with runtime.unit_of_work(read_only=True) as uow:
            if kind == "Task":
                task = uow.tasks.get(found_id)
                found_id = task.referral_id if task and task.sender == sender else ""
            referral = uow.referrals.get(found_id) if found_id else None
        if referral is not None and referral.sender == sender:
            return found_id
    raise Unacceptable(
        "QuestionnaireResponse.basedOn must name one of your referrals (its ServiceRequest or "
        "its Task)",
        "QuestionnaireResponse.basedOn",
    )


def _without_id(resource: dict[str, Any]) -> dict[str, Any]:
    # The sender's id names the Patient in its own system; this service gives it one of its own.
    return {k: v for k, v in resource.items() if k != "id"}


def _unknown_event(runtime: Dependencies, receiving: Receiving, message: Message) -> Answer:
    issue = Issue(
        "not-supported",
        f"the event {message.event_label} is not one this service takes: it takes referrals "
        "(v2-0003 I12), answers to the referral form (v2-0003 I13) and patient registrations "
        "(v2-0003 A04, A28; message-events admin-notify)",
        ("MessageHeader.eventCoding",),
    )
    response = _respond(receiving, message, "fatal-error", issues=(issue,))
    answer = Answer(response, "fatal-error", False)
    with runtime.unit_of_work() as uow:
        _record(uow, receiving, message, answer)
    return answer
