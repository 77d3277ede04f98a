"""A message id reused for a different message is refused (409 OperationOutcome, `duplicate`,
nothing stored, the first message's record kept); the same message again, even with a new
`Bundle.meta` and `timestamp` or its keys in another order, is a resend answered from the
record. Over real HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from referral_service.adapters.db.tables import received_messages, referrals, stored_resources
from tests.integration.messaging.conftest import referral_message, registration_message


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_another_message_under_a_used_id_is_refused(post_message, engine) -> None:
    first = post_message(referral_message("msg-reused", identifier="ref-first"))
    assert first.status_code == 200, first.text

    other = post_message(referral_message("msg-reused", identifier="ref-other"))
    assert other.status_code == 409, other.text
    outcome = other.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [(i["code"], i["expression"]) for i in outcome["issue"]] == [
        ("duplicate", ["Bundle.id"])
    ]
    assert _count(engine, referrals) == 1
    assert _count(engine, received_messages) == 1

    # The first message again is still its resend, answered from the record.
    again = post_message(referral_message("msg-reused", identifier="ref-first"))
    assert (again.status_code, again.json()) == (200, first.json())

    # Another sender's message under the same id is its own message.
    theirs = post_message(referral_message("msg-reused", identifier="ref-other"), sender="er-b")
    assert theirs.status_code == 200, theirs.text
    assert _count(engine, referrals) == 2


def test_a_resend_stamped_afresh_or_reordered_is_the_same_message(post_message, engine):  # type: ignore[no-untyped-def]
    message = registration_message("msg-reg-meta")
    first = post_message(message)
    assert first.status_code == 200, first.text
    stamped = {
        **message,
        "meta": {"lastUpdated": "2026-12-03T09:00:00Z"},
        "timestamp": "2026-12-03T09:00:05Z",  # assembled afresh for the resend
    }
    reordered = json.dumps(dict(reversed(list(stamped.items())))).encode()
    again = post_message(None, raw=reordered)
    assert (again.status_code, again.json()) == (200, first.json())

    changed = registration_message("msg-reg-meta")
    changed["entry"][1]["resource"]["birthDate"] = "1980-01-02"
    refused = post_message(changed)
    assert refused.status_code == 409, refused.text
    assert _count(engine, stored_resources) == 1
