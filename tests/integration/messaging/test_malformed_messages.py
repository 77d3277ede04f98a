"""A corpus of malformed messages: each gets its 4xx OperationOutcome with the expected issue
code, and nothing is stored (no referral, Task, resource or message record), on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from referral_service.adapters.db.tables import (
    received_messages,
    referrals,
    stored_resources,
    tasks,
)
from referral_service.fhir.message import MAX_ENTRIES
from tests.integration.messaging.conftest import (
    PATIENT_URL,
    TASK_URL,
    copied,
    header,
    referral_message,
    registration_message,
    task_message,
)

Message = dict[str, Any]


def _change(message: Message, change: Callable[[Message], Any]) -> Message:
    message = copied(message)
    change(message)
    return message


def _entry_resource(index: int, **changes: Any) -> Callable[[Message], None]:
    def change(message: Message) -> None:
        message["entry"][index]["resource"].update(changes)

    return change


def _header_set(**changes: Any) -> Callable[[Message], None]:
    return _entry_resource(0, **changes)


def _header_drop(name: str) -> Callable[[Message], None]:
    return lambda m: m["entry"][0]["resource"].pop(name)


def _many_entries(message: Message) -> None:
    patient = message["entry"][1]
    message["entry"].extend(
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}", "resource": patient["resource"]}
        for n in range(MAX_ENTRIES)
    )


def _task_focus_elsewhere(message: Message) -> None:
    task = next(e for e in message["entry"] if e.get("fullUrl") == TASK_URL)
    task["resource"]["focus"] = {"reference": PATIENT_URL}


def _task_identifier_without_value(message: Message) -> None:
    task = next(e for e in message["entry"] if e.get("fullUrl") == TASK_URL)
    task["resource"]["identifier"] = [{"system": "https://ed.example.org/tasks"}]


SR = referral_message()
CASES: list[tuple[str, Any, int, str]] = [
    ("not-a-bundle", {"resourceType": "Patient"}, 400, "invalid"),
    (
        "transaction-not-message",
        _change(SR, lambda m: m.update(type="transaction")),
        400,
        "invalid",
    ),
    ("no-bundle-id", _change(SR, lambda m: m.pop("id")), 400, "required"),
    ("bad-bundle-id", _change(SR, lambda m: m.update(id="no spaces/allowed")), 400, "required"),
    ("no-entries", _change(SR, lambda m: m.update(entry=[])), 400, "required"),
    ("header-not-first", _change(SR, lambda m: m["entry"].reverse()), 400, "structure"),
    (
        "entry-without-resource",
        _change(SR, lambda m: m["entry"][2].pop("resource")),
        400,
        "required",
    ),
    (
        "entry-with-request",
        _change(SR, lambda m: m["entry"][2].update(request={"method": "POST", "url": "Patient"})),
        400,
        "invariant",
    ),
    (
        "duplicate-full-urls",
        _change(SR, lambda m: m["entry"][3].update(fullUrl=m["entry"][2]["fullUrl"])),
        400,
        "invariant",
    ),
    ("no-event", _change(SR, _header_drop("eventCoding")), 400, "required"),
    (
        "event-without-system",
        _change(SR, _header_set(eventCoding={"code": "I12"})),
        400,
        "value",
    ),
    ("event-not-a-coding", _change(SR, _header_set(eventCoding="I12")), 400, "required"),
    ("no-source-endpoint", _change(SR, _header_set(source={"name": "ED"})), 400, "required"),
    ("no-focus", _change(SR, _header_drop("focus")), 422, "required"),
    (
        "focus-not-in-bundle",
        _change(SR, _header_set(focus=[{"reference": "urn:uuid:not-in-this-message"}])),
        422,
        "not-found",
    ),
    (
        "dangling-reference",
        _change(
            SR, lambda m: m["entry"][2]["resource"].update(subject={"reference": "urn:uuid:gone"})
        ),
        422,
        "not-found",
    ),
    (
        "reference-not-a-string",
        _change(SR, lambda m: m["entry"][2]["resource"].update(subject={"reference": 7})),
        400,
        "value",
    ),
    (
        "referral-focus-is-a-patient",
        _change(SR, _header_set(focus=[{"reference": PATIENT_URL}])),
        422,
        "invalid",
    ),
    ("task-focus-elsewhere", _change(task_message(), _task_focus_elsewhere), 422, "required"),
    (
        "task-identifier-without-value",
        _change(task_message(), _task_identifier_without_value),
        422,
        "required",
    ),
    (
        "registration-focus-not-patient",
        _change(
            registration_message(),
            lambda m: (
                m["entry"].__setitem__(
                    0, header("A04", focus=m["entry"][0]["resource"]["focus"][0]["reference"])
                )
                or m["entry"][1]["resource"].update(resourceType="Organization", name="ED")
            ),
        ),
        422,
        "invalid",
    ),
    (
        "a-response-message",
        _change(SR, _header_set(response={"identifier": "x", "code": "ok"})),
        422,
        "not-supported",
    ),
    (
        "unsupported-entry-type",
        _change(
            SR,
            lambda m: m["entry"].append(
                {
                    "fullUrl": "urn:uuid:acc",
                    "resource": {"resourceType": "Account", "status": "active"},
                }
            ),
        ),
        422,
        "not-supported",
    ),
    (
        "invalid-service-request",
        _change(SR, lambda m: m["entry"][-1]["resource"].update(status="bogus")),
        422,
        "value",
    ),
    ("too-many-entries", _change(SR, _many_entries), 413, "too-costly"),
    ("not-json", b"{not json", 400, "structure"),
    ("over-the-size-limit", b" " * (2 * 1024 * 1024 + 1), 413, "too-costly"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_malformed_message_is_refused_and_nothing_stored(
    post_message, engine, name: str, body: Any, status: int, code: str
) -> None:
    raw = body if isinstance(body, bytes) else None
    response = post_message(body, raw=raw)
    assert response.status_code == status, (name, response.text)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert outcome["issue"][0]["code"] == code, (name, outcome)
    for table in (referrals, tasks, stored_resources, received_messages):
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0, table.name


def test_asynchronous_messaging_is_refused(post_message, engine) -> None:
    response = post_message(referral_message(), query="?async=true")
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "not-supported"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(referrals)).scalar() == 0


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 15


def test_an_intake_refusal_names_the_entry_where_it_is_in_the_message(post_message) -> None:
    message = referral_message()
    message["entry"][-1]["resource"]["status"] = "bogus"  # the ServiceRequest: entry 5
    response = post_message(message)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[5].resource.status"]
