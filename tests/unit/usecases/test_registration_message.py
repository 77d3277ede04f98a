"""A Patient registration message, specified on the fake unit of work: the Patient and the
message's receipt commit in one unit of work, so a crash while recording leaves no Patient and
the resend of a Patient without an identifier stores one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from referral_service.fhir.message import read_message
from referral_service.services.intake.messages import Receiving, process_message
from tests.support import fakes
from tests.support.fakes import NOW, FakeRuntime

RECEIVING = Receiving("er-a", NOW, "https://clinic.example.org")
PATIENT_URL = "https://ed.example.org/fhir/Patient/ed-7"


def _registration(identified: bool) -> dict[str, Any]:
    header = {
        "resourceType": "MessageHeader",
        "id": "hdr-1",
        "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003", "code": "A04"},
        "source": {"endpoint": "https://ed.example.org/fhir/messages"},
        "focus": [{"reference": PATIENT_URL}],
    }
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "ed-7", "birthDate": "1980-01-01"}
    if identified:
        patient["identifier"] = [{"system": "https://ed.example.org/mrn", "value": "MRN-7"}]
    return {
        "resourceType": "Bundle",
        "id": "msg-reg-1",
        "type": "message",
        "entry": [
            {"fullUrl": "urn:uuid:0c8b1e47-3b7e-4c35-9b53-6f1d2a8f0001", "resource": header},
            {"fullUrl": PATIENT_URL, "resource": patient},
        ],
    }


class Crash(Exception):
    """The process dying once the Patient is stored, before the receipt is."""


@pytest.fixture
def runtime() -> FakeRuntime:
    runtime = FakeRuntime()
    runtime.policy = SimpleNamespace(form=None)  # type: ignore[assignment]
    return runtime


def test_the_patient_and_the_receipt_commit_together(runtime: FakeRuntime) -> None:
    answer = process_message(runtime, RECEIVING, read_message(_registration(False)), [])
    assert answer.code == "ok" and not answer.replayed
    assert runtime.store.commits == 1  # one unit of work: the Patient and the receipt
    [(kind, patient_id)] = runtime.store.resources
    assert kind == "Patient"
    assert answer.response["entry"][1]["resource"]["id"] == patient_id
    assert list(runtime.store.messages) == [("er-a", "msg-reg-1")]


@pytest.mark.parametrize("identified", [True, False])
def test_a_crash_while_recording_leaves_nothing_and_the_resend_stores_one_patient(
    runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch, identified: bool
) -> None:
    record = fakes._Messages.record
    crashes = [Crash()]

    def crash_once(self: Any, *args: Any) -> None:
        if crashes:
            raise crashes.pop()
        record(self, *args)

    monkeypatch.setattr(fakes._Messages, "record", crash_once)
    message = read_message(_registration(identified))
    with pytest.raises(Crash):
        process_message(runtime, RECEIVING, message, [])
    assert (runtime.store.commits, runtime.store.resources) == (0, {})

    first = process_message(runtime, RECEIVING, message, [])
    again = process_message(runtime, RECEIVING, message, [])
    assert again.replayed and again.response == first.response
    assert len(runtime.store.resources) == 1
    assert runtime.store.commits == 1
