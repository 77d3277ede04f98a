"""A Patient registration message stores its Patient and records its receipt in one transaction:
a crash while recording rolls the Patient back, so the resend of a Patient without an
identifier (nothing to recognise it by) stores it once. Over real HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from referral_service.adapters.db.messages import ReceivedMessages
from referral_service.adapters.db.tables import received_messages, stored_resources
from tests.integration.messaging.conftest import registration_message


class Crash(Exception):
    """The process dying between storing the Patient and recording the message."""


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def _without_identifier(message_id: str) -> dict[str, Any]:
    message = registration_message(message_id)
    del message["entry"][1]["resource"]["identifier"]
    return message


def test_a_crash_while_recording_stores_no_patient_and_the_resend_stores_one(
    post_message, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = ReceivedMessages.record
    crashes = [Crash("the process died")]

    def crash_once(self: ReceivedMessages, *args: Any, **kwargs: Any) -> None:
        if crashes:
            raise crashes.pop()
        record(self, *args, **kwargs)

    monkeypatch.setattr(ReceivedMessages, "record", crash_once)
    message = _without_identifier("msg-reg-crash")
    failed = post_message(message)
    assert failed.status_code == 500, failed.text
    assert crashes == []  # the crash happened, at the record
    assert _count(engine, stored_resources) == 0  # the Patient went with it
    assert _count(engine, received_messages) == 0

    resent = post_message(message)
    assert resent.status_code == 200, resent.text
    assert resent.json()["entry"][0]["resource"]["response"]["code"] == "ok"
    assert _count(engine, stored_resources) == 1
    assert _count(engine, received_messages) == 1
    again = post_message(message)  # answered from the record: still one Patient
    assert again.json() == resent.json()
    assert _count(engine, stored_resources) == 1


@pytest.mark.parametrize("identified", [True, False])
def test_the_same_registration_sent_three_times_at_once_stores_one_patient(
    post_message, engine, identified: bool
) -> None:
    message = registration_message("msg-reg-twins")
    if not identified:
        message = _without_identifier("msg-reg-twins")
    with ThreadPoolExecutor(max_workers=3) as pool:
        sent = list(pool.map(lambda _: post_message(message), range(3)))
    assert [r.status_code for r in sent] == [200] * 3, [r.text for r in sent]
    assert all(r.json() == sent[0].json() for r in sent)  # one recorded response for all
    assert _count(engine, stored_resources) == 1
    assert _count(engine, received_messages) == 1
