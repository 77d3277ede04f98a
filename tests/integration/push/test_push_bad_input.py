"""Bad input on each pushed type gets the ServiceRequest treatment: an OperationOutcome with
415 (not JSON), 400 (unreadable or the wrong type), 422 (invalid), 413 (too large); never 500."""

from __future__ import annotations

import json

import pytest

from referral_service.services.intake.resources import PUSHED_TYPES
from tests.support.referrals import FHIR_JSON

# One valid body per type; each test breaks it in one way.
VALID = {kind: {"resourceType": kind} for kind in PUSHED_TYPES}
VALID["Encounter"] = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}
VALID["Condition"] = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}}
VALID["Observation"] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "headache days"},
}
VALID["MedicationStatement"] = {
    "resourceType": "MedicationStatement",
    "status": "active",
    "subject": {"reference": "Patient/p"},
    "medicationCodeableConcept": {"text": "topiramate"},
}
VALID["MedicationRequest"] = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/p"},
    "medicationCodeableConcept": {"text": "topiramate"},
}
VALID["MedicationAdministration"] = {
    "resourceType": "MedicationAdministration",
    "status": "completed",
    "subject": {"reference": "Patient/p"},
    "medicationCodeableConcept": {"text": "sumatriptan"},
    "effectiveDateTime": "2026-01-05",
}
VALID["AllergyIntolerance"] = {
    "resourceType": "AllergyIntolerance",
    "patient": {"reference": "Patient/p"},
}
VALID["DiagnosticReport"] = {
    "resourceType": "DiagnosticReport",
    "status": "final",
    "code": {"text": "MRI brain"},
}
VALID["QuestionnaireResponse"] = {"resourceType": "QuestionnaireResponse", "status": "completed"}


def _outcome(response, status: int) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, (status, response.get_json())
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]


def _post(client, kind: str, data: bytes, content_type: str = FHIR_JSON):  # type: ignore
    return client.post(f"/fhir/{kind}", data=data, headers={"Content-Type": content_type})


def test_every_type_accepts_its_valid_body(client) -> None:
    for kind, body in VALID.items():
        response = _post(client, kind, json.dumps(body).encode())
        assert response.status_code == 201, (kind, response.get_json())


@pytest.mark.parametrize("kind", PUSHED_TYPES)
def test_bad_input_gets_an_operation_outcome(client, kind: str) -> None:
    valid = VALID[kind]
    _outcome(_post(client, kind, json.dumps(valid).encode(), "text/plain"), 415)
    _outcome(_post(client, kind, b"<Patient/>", "application/fhir+xml"), 415)
    _outcome(_post(client, kind, b'{"resourceType": '), 400)
    _outcome(_post(client, kind, b"[]"), 400)
    _outcome(_post(client, kind, b""), 400)
    wrong = "Practitioner" if kind == "Patient" else "Patient"
    _outcome(_post(client, kind, json.dumps({"resourceType": wrong}).encode()), 400)
    issues = _outcome(_post(client, kind, json.dumps({**valid, "colour": "red"}).encode()), 422)
    assert issues[0]["code"] == "structure"
    assert issues[0]["expression"] == [f"{kind}.colour"]
    _outcome(_post(client, kind, json.dumps({**valid, "identifier": "x"}).encode()), 422)
    too_long = {**valid, "identifier": [{"system": "https://x.example", "value": "v" * 600}]}
    if kind == "QuestionnaireResponse":
        too_long["identifier"] = too_long["identifier"][0]
    _outcome(_post(client, kind, json.dumps(too_long).encode()), 422)
    _outcome(_post(client, kind, b" " * (2 * 1024 * 1024 + 1)), 413)


def test_required_elements_are_required(client) -> None:
    issues = _outcome(_post(client, "Observation", b'{"resourceType": "Observation"}'), 422)
    assert {i["expression"][0] for i in issues} >= {"Observation.status", "Observation.code"}
    issues = _outcome(_post(client, "Condition", b'{"resourceType": "Condition"}'), 422)
    assert issues[0]["code"] == "required"


def test_an_update_gets_the_same_treatment(client) -> None:
    created = _post(client, "Observation", json.dumps(VALID["Observation"]).encode()).get_json()
    path = f"/fhir/Observation/{created['id']}"
    headers = {"Content-Type": FHIR_JSON}
    _outcome(client.put(path, data=b"{", headers=headers), 400)
    _outcome(client.put(path, data=b"{}", headers={"Content-Type": "text/csv"}), 415)
    _outcome(client.put(path, json={**created, "status": 7}, headers=headers), 422)
    _outcome(client.put(path, json={"resourceType": "Condition"}, headers=headers), 400)
    assert client.get(path).get_json()["meta"]["versionId"] == "1"


def test_bad_search_parameters_are_400(client) -> None:
    _outcome(client.get("/fhir/Observation?_count=many"), 400)
    # Issue 21: a parameter the type lacks is refused under Prefer: handling=strict; lenient
    # handling (the default) leaves it out of the search and out of the self link.
    strict = {"Prefer": "handling=strict"}
    _outcome(client.get("/fhir/Organization?subject=Patient/1", headers=strict), 400)
    _outcome(client.get("/fhir/AllergyIntolerance?subject=Patient/1", headers=strict), 400)
    lenient = client.get("/fhir/AllergyIntolerance?subject=Patient/1")
    assert lenient.status_code == 200
    assert "subject" not in lenient.get_json()["link"][0]["url"]
    assert client.get("/fhir/AllergyIntolerance?patient=Patient/1").status_code == 200
    _outcome(client.get("/fhir/Observation", headers={"Accept": "application/fhir+xml"}), 406)


def test_a_bad_placer_task_gets_an_operation_outcome(client) -> None:
    _outcome(_post(client, "Task", b'{"resourceType": "Task"}', "text/plain"), 415)
    _outcome(_post(client, "Task", b"{"), 400)
    _outcome(_post(client, "Task", b'{"resourceType": "Patient"}'), 400)
    issues = _outcome(_post(client, "Task", b'{"resourceType": "Task"}'), 422)
    assert {i["expression"][0] for i in issues} >= {"Task.status", "Task.intent"}
    bad_status = {"resourceType": "Task", "status": "wished", "intent": "order"}
    _outcome(_post(client, "Task", json.dumps(bad_status).encode()), 422)
