"""CDS Hooks feedback (CDS Hooks 2.0, "Feedback"): which of our cards a clinician accepted or
overrode. Recorded by card id, outcome, override reason code and time only: the clinician's
free-text comment is never kept, and nothing in a feedback row is patient data.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from referral_service.adapters.db import cds as store
from referral_service.fhir.outcome import FhirError, Issue
from referral_service.observability.metrics import cds_feedback_received
from referral_service.services.dependencies import Dependencies

OUTCOMES = ("accepted", "overridden")
CODE_LIMIT, SYSTEM_LIMIT = 64, 255


@dataclass(frozen=True)
class Feedback:
    card: str
    outcome: str
    reason_system: str | None
    reason_code: str | None
    at: datetime


def read_feedback(body: Any) -> list[Feedback]:
    """The feedback entries of a request body, or a 400 naming the first thing wrong."""
    if not isinstance(body, dict):
        raise _invalid("body", "the body must be a JSON object with a feedback array")
    entries = body.get("feedback")
    if not isinstance(entries, list) or not entries:
        raise _invalid("feedback", "feedback must be a non-empty array")
    return [_entry(item, f"feedback[{i}]") for i, item in enumerate(entries)]


def record_feedback(
    runtime: Dependencies, service_id: str, items: list[Feedback], *, now: datetime
) -> None:
    """Store every entry, or none when one is about a card this service never issued."""
    with runtime.unit_of_work() as uow:
        known = uow.cds_cards.issued_by(service_id, (f.card for f in items))
        for i, item in enumerate(items):
            if item.card not in known:
                raise FhirError(
                    Issue(
                        "not-found",
                        f"card {item.card} was not issued by CDS service {service_id}",
                        (f"feedback[{i}].card",),
                    ),
                    status=400,
                )
        uow.cds_cards.add_feedback([_row(service_id, f, now) for f in items])
    for item in items:
        cds_feedback_received(service_id, item.outcome)


def _row(service_id: str, item: Feedback, now: datetime) -> store.FeedbackRow:
    return store.FeedbackRow(
        card_uuid=item.card,
        service_id=service_id,
        outcome=item.outcome,
        override_reason_system=item.reason_system,
        override_reason_code=item.reason_code,
        outcome_at=item.at,
        received_at=now,
    )


def _entry(item: Any, where: str) -> Feedback:
    if not isinstance(item, dict):
        raise _invalid(where, "each feedback entry must be an object")
    outcome = item.get("outcome")
    if outcome not in OUTCOMES:
        raise _invalid(f"{where}.outcome", "outcome must be accepted or overridden")
    _check_suggestions(item.get("acceptedSuggestions"), where)
    system, code = _override_reason(item.get("overrideReason"), outcome, where)
    return Feedback(
        _card_id(item.get("card"), where),
        outcome,
        system,
        code,
        _timestamp(item.get("outcomeTimestamp"), where),
    )


def _card_id(value: Any, where: str) -> str:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return str(uuid.UUID(value))
    raise _invalid(f"{where}.card", "card must be the uuid of a card this service returned")


def _timestamp(value: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _invalid(
            f"{where}.outcomeTimestamp", "outcomeTimestamp must be an ISO 8601 time in UTC"
        )
    return moment.astimezone(UTC)


def _check_suggestions(value: Any, where: str) -> None:
    if value is None:
        return  # our cards carry no suggestions, so an accepted card may name none
    if not isinstance(value, list) or not all(
        isinstance(s, dict) and isinstance(s.get("id"), str) for s in value
    ):
        raise _invalid(
            f"{where}.acceptedSuggestions", "acceptedSuggestions must be objects with an id"
        )


def _override_reason(value: Any, outcome: str, where: str) -> tuple[str | None, str | None]:
    """The reason's system and code; its userComment (free text) is not kept."""
    if value is None:
        return None, None
    here = f"{where}.overrideReason"
    if outcome != "overridden":
        raise _invalid(here, "overrideReason is only for an overridden card")
    if not isinstance(value, dict):
        raise _invalid(here, "overrideReason must be an object")
    reason = value.get("reason")
    if reason is None:
        return None, None
    if not isinstance(reason, dict):
        raise _invalid(f"{here}.reason", "reason must be a Coding")
    code, system = reason.get("code"), reason.get("system")
    if not isinstance(code, str) or not 0 < len(code) <= CODE_LIMIT:
        raise _invalid(f"{here}.reason.code", f"reason.code must be 1-{CODE_LIMIT} characters")
    if system is not None and (not isinstance(system, str) or len(system) > SYSTEM_LIMIT):
        raise _invalid(
            f"{here}.reason.system", f"reason.system must be a URI of {SYSTEM_LIMIT} at most"
        )
    return system, code


def _invalid(where: str, text: str) -> FhirError:
    return FhirError(Issue("invalid", text, (where,)), status=400)
