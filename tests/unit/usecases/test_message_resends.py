"""Resends of a FHIR message, specified on the fake unit of work: the same message again is
answered from the record and commits nothing; a different message under the used id is refused
(409 `duplicate`) and the first one's record stays."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from referral_service.fhir.message import content_digest, read_message
from referral_service.fhir.outcome import Conflict
from referral_service.services.intake.messages import Receiving, process_message
from tests.support.fakes import NOW, FakeRuntime

V2 = "http://terminology.hl7.org/CodeSystem/v2-0003"
RECEIVING = Receiving("er-a", NOW, "https://clinic.example.org")


def _message(event: str = "O21", message_id: str = "msg-1") -> dict[str, Any]:
    """An event the clinic does not take: answered fatal-error, recorded, nothing else stored."""
    header = {
        "resourceType": "MessageHeader",
        "id": "hdr-1",
        "eventCoding": {"system": V2, "code": event},
        "source": {"endpoint": "https://ed.example.org/fhir/messages"},
    }
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "entry": [{"fullUrl": "urn:uuid:0c8b1e47-3b7e-4c35-9b53-6f1d2a8f0001", "resource": header}],
    }


def test_the_same_message_again_is_answered_from_the_record() -> None:
    runtime = FakeRuntime()
    first = process_message(runtime, RECEIVING, read_message(_message()), [])
    assert (first.code, first.replayed, runtime.store.commits) == ("fatal-error", False, 1)
    again = process_message(runtime, RECEIVING, read_message(_message()), [])
    assert again.replayed and again.response == first.response
    assert runtime.store.commits == 1


def test_another_message_under_the_used_id_is_refused_and_the_record_stays() -> None:
    runtime = FakeRuntime()
    first = process_message(runtime, RECEIVING, read_message(_message("O21")), [])
    with pytest.raises(Conflict) as refused:
        process_message(runtime, RECEIVING, read_message(_message("O22")), [])
    (issue,) = refused.value.issues
    assert (issue.code, issue.expression) == ("duplicate", ("Bundle.id",))
    assert runtime.store.commits == 1
    assert process_message(runtime, RECEIVING, read_message(_message("O21")), []).response == (
        first.response
    )
    # Another sender's message under the same id is its own.
    theirs = Receiving("er-b", NOW, RECEIVING.base)
    assert not process_message(runtime, theirs, read_message(_message("O22")), []).replayed


def test_the_digest_leaves_out_the_envelope_and_key_order_but_not_content() -> None:
    message = _message()
    stamped = {
        **copy.deepcopy(message),
        "meta": {"lastUpdated": "2026-12-03T09:00:00Z"},
        "timestamp": "2026-12-03T09:00:00Z",
    }
    reordered = dict(reversed(list(stamped.items())))
    assert content_digest(reordered) == content_digest(message)
    changed = copy.deepcopy(message)
    changed["entry"][0]["resource"]["source"]["endpoint"] = "https://ed.example.org/other"
    assert content_digest(changed) != content_digest(message)
