"""POST /fhir/$process-message: FHIR R4 messaging, synchronous. A message Bundle in, a response
message out (`ok` or `fatal-error` with 200, `transient-error` with 503); a Bundle that is not a
readable message gets a 4xx OperationOutcome and nothing is stored."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import OperationalError

from referral_service.api.fhir_io import check_accept, fhir_response, public_base, read_resource
from referral_service.api.fhir_io import runtime as current_runtime
from referral_service.api.identity import current_sender
from referral_service.fhir import message as fhir_message
from referral_service.fhir.instant import format_instant
from referral_service.fhir.outcome import Issue, Unreadable
from referral_service.fhir.placer_task import placer_identifiers
from referral_service.fhir.validation import expect_resource_type
from referral_service.observability import metrics
from referral_service.services.intake import messages

messaging_bp = Blueprint("fhir_messaging", __name__)
REFERRAL_DEFINITION = "https://referral-service.dev/MessageDefinition/referral"
REGISTRATION_DEFINITION = "https://referral-service.dev/MessageDefinition/patient-registration"
ANSWERS_DEFINITION = "https://referral-service.dev/MessageDefinition/referral-form-answers"


@messaging_bp.post("/fhir/$process-message")
def process_message() -> Response:
    check_accept()
    if request.args.get("async") == "true":
        raise Unreadable.single(
            "not-supported", "only synchronous messaging is supported (async=false)", "async"
        )
    document = read_resource()
    expect_resource_type(document, "Bundle")
    message = fhir_message.read_message(document)
    placer = placer_identifiers(message.placer_task) if message.placer_task else []
    runtime = current_runtime()
    receiving = messages.Receiving(current_sender(), runtime.now(), public_base())
    try:
        answer = messages.process_message(runtime, receiving, message, placer)
    except OperationalError:
        # Nothing was committed; the sender should send the same message again later.
        return _transient(message, receiving)
    if answer.referral_created:
        metrics.referral_received("message")
    return fhir_response(answer.response, 200)


def _transient(message: fhir_message.Message, receiving: messages.Receiving) -> Response:
    issue = Issue("transient", "the service's database is unavailable; nothing was stored")
    response = fhir_message.response_message(
        message,
        response_id=str(uuid.uuid4()),
        code="transient-error",
        timestamp=format_instant(receiving.now),
        endpoint=receiving.endpoint,
        issues=(issue,),
    )
    return fhir_response(response, 503, {"Retry-After": "5"})


def messaging_capability(base: str) -> dict[str, Any]:
    """The CapabilityStatement's `messaging` entry: what $process-message takes, truthfully."""
    events = sorted(
        fhir_message.REFERRAL_EVENTS | fhir_message.REGISTRATION_EVENTS | fhir_message.ANSWER_EVENTS
    )
    return {
        "endpoint": [
            {
                "protocol": {
                    "system": "http://terminology.hl7.org/CodeSystem/message-transport",
                    "code": "http",
                },
                "address": f"{base}/fhir/$process-message",
            }
        ],
        "documentation": (
            "Synchronous only. Accepted events: "
            + ", ".join(f"{system}|{code}" for system, code in events)
            + ". Referral (I12): focus a ServiceRequest, or a Task whose focus is one (BSeR); "
            "registration (A04, A28, admin-notify): focus a Patient; answers to the referral "
            "form (I13): focus a QuestionnaireResponse basedOn your ServiceRequest or Task. "
            "Any other event is answered "
            "fatal-error. A resend (same Bundle.id, same sender) gets the same response."
        ),
        "supportedMessage": [
            {"mode": "receiver", "definition": definition}
            for definition in (REFERRAL_DEFINITION, REGISTRATION_DEFINITION, ANSWERS_DEFINITION)
        ],
    }


def _advertise(statement: dict[str, Any]) -> None:
    statement["rest"][0].setdefault("operation", []).append(
        {"name": "process-message", "definition": fhir_message.PROCESS_MESSAGE}
    )
    statement["messaging"] = [messaging_capability(public_base())]


@messaging_bp.record_once
def _register_capability(state: BlueprintSetupState) -> None:
    state.app.config.setdefault("CAPABILITY_STATEMENT_EXTENSIONS", []).append(_advertise)
