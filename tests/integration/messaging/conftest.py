"""Fixtures for $process-message: the app served over real HTTP (a werkzeug server on loopback
in a thread), its callers naming their sending system in `X-Test-Sender` (test-only: production
takes the sender from the bearer token), and message Bundles built from the Bundle tests'
referral."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import g, request

from tests.integration.api.test_bundles import referral_bundle
from tests.support.referrals import FHIR_JSON
from tests.support.service import serve_in_thread

V2 = "http://terminology.hl7.org/CodeSystem/v2-0003"
REFERRAL_URL = "urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000005"
PATIENT_URL = "urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000001"
TASK_URL = "urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000006"
Post = Callable[..., requests.Response]


@pytest.fixture
def base_url(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    @app.before_request
    def _act_as_sender() -> None:
        sender = request.headers.get("X-Test-Sender")
        if sender:
            g.sender = sender
            g.is_staff = False

    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def post_message(base_url: str) -> Post:
    session = requests.Session()

    def post(
        body: Any, sender: str = "er-a", raw: bytes | None = None, query: str = ""
    ) -> requests.Response:
        return session.post(
            f"{base_url}/fhir/$process-message{query}",
            data=raw,
            json=None if raw is not None else body,
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "X-Test-Sender": sender},
            timeout=30,
        )

    return post


@pytest.fixture
def get(base_url: str) -> Callable[..., requests.Response]:
    def fetch(path: str, sender: str = "er-a") -> requests.Response:
        return requests.get(
            f"{base_url}{path}", headers={"Accept": FHIR_JSON, "X-Test-Sender": sender}, timeout=30
        )

    return fetch


def header(event: str = "I12", focus: str = REFERRAL_URL, system: str = V2) -> dict[str, Any]:
    return {
        "fullUrl": "urn:uuid:0c8b1e47-3b7e-4c35-9b53-6f1d2a8f0001",
        "resource": {
            "resourceType": "MessageHeader",
            "id": "hdr-1",
            "eventCoding": {"system": system, "code": event},
            "source": {"name": "ED", "endpoint": "https://ed.example.org/fhir/messages"},
            "destination": [{"endpoint": "https://clinic.example.org/fhir/$process-message"}],
            "focus": [{"reference": focus}],
        },
    }


def referral_message(message_id: str = "msg-1", identifier: str = "msg-ref-1") -> dict[str, Any]:
    """An ED-style referral message: MessageHeader (REF^I12) focusing the ServiceRequest, then
    the ServiceRequest's Patient, Condition and Observations."""
    transaction = referral_bundle(identifier=identifier)
    entries = [{k: v for k, v in e.items() if k != "request"} for e in transaction["entry"]]
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "entry": [header(), *entries],
    }


def task_message(message_id: str = "msg-task-1", identifier: str = "msg-ref-2") -> dict[str, Any]:
    """BSeR: the MessageHeader focuses the placer's Task, whose focus is the ServiceRequest."""
    message = referral_message(message_id, identifier)
    message["entry"][0] = header(focus=TASK_URL)
    task = {
        "resourceType": "Task",
        "identifier": [{"system": "https://ed.example.org/tasks", "value": f"task-{identifier}"}],
        "status": "requested",
        "intent": "order",
        "focus": {"reference": REFERRAL_URL},
        "for": {"reference": PATIENT_URL},
    }
    message["entry"].append({"fullUrl": TASK_URL, "resource": task})
    return message


def registration_message(message_id: str = "msg-reg-1", event: str = "A04") -> dict[str, Any]:
    patient = {
        "resourceType": "Patient",
        "id": "ed-patient-7",
        "identifier": [{"system": "https://ed.example.org/mrn", "value": "MRN-7"}],
        "name": [{"family": "Registered"}],
        "birthDate": "1980-01-01",
    }
    url = "https://ed.example.org/fhir/Patient/ed-patient-7"
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "entry": [header(event, focus=url), {"fullUrl": url, "resource": patient}],
    }


def copied(message: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(message)
