"""A corpus of bad inputs: each gets its status and OperationOutcome issue code, and nothing is
stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from referral_service.adapters.db.tables import jobs, referrals, tasks
from tests.support.referrals import FHIR_JSON, service_request, variant


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The corpus is about the HTTP edge; one database is enough (storage runs on both)."""
    return sqlite_url


def _sr(**changes: Any) -> bytes:
    return json.dumps(variant(service_request("corpus"), **changes)).encode()


def _without(*names: str) -> bytes:
    resource = service_request("corpus")
    for name in names:
        resource.pop(name)
    return json.dumps(resource).encode()


# (case id, method, path, body, content type, expected status, expected issue code)
CASES = [
    ("empty body", "POST", "/fhir/ServiceRequest", b"", FHIR_JSON, 400, "required"),
    ("whitespace body", "POST", "/fhir/ServiceRequest", b"   ", FHIR_JSON, 400, "required"),
    ("not json", "POST", "/fhir/ServiceRequest", b"hello", FHIR_JSON, 400, "structure"),
    (
        "truncated json",
        "POST",
        "/fhir/ServiceRequest",
        b'{"resourceType": "Serv',
        FHIR_JSON,
        400,
        "structure",
    ),
    ("json array", "POST", "/fhir/ServiceRequest", b"[1, 2]", FHIR_JSON, 400, "structure"),
    (
        "json string",
        "POST",
        "/fhir/ServiceRequest",
        b'"ServiceRequest"',
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "invalid utf-8",
        "POST",
        "/fhir/ServiceRequest",
        b'{"a": "\xff\xfe"}',
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "no resourceType",
        "POST",
        "/fhir/ServiceRequest",
        b'{"status": "active"}',
        FHIR_JSON,
        400,
        "required",
    ),
    (
        "wrong resourceType",
        "POST",
        "/fhir/ServiceRequest",
        json.dumps({"resourceType": "Patient"}).encode(),
        FHIR_JSON,
        400,
        "invalid",
    ),
    (
        "xml body",
        "POST",
        "/fhir/ServiceRequest",
        b"<ServiceRequest/>",
        "application/fhir+xml",
        415,
        "not-supported",
    ),
    ("text/plain", "POST", "/fhir/ServiceRequest", _sr(), "text/plain", 415, "not-supported"),
    (
        "form encoded",
        "POST",
        "/fhir/ServiceRequest",
        b"a=b",
        "application/x-www-form-urlencoded",
        415,
        "not-supported",
    ),
    ("no content type", "POST", "/fhir/ServiceRequest", _sr(), None, 415, "not-supported"),
    ("bogus status", "POST", "/fhir/ServiceRequest", _sr(status="bogus"), FHIR_JSON, 422, "value"),
    ("bogus intent", "POST", "/fhir/ServiceRequest", _sr(intent="wish"), FHIR_JSON, 422, "value"),
    (
        "bogus priority",
        "POST",
        "/fhir/ServiceRequest",
        _sr(priority="whenever"),
        FHIR_JSON,
        422,
        "value",
    ),
    (
        "missing status",
        "POST",
        "/fhir/ServiceRequest",
        _without("status"),
        FHIR_JSON,
        422,
        "required",
    ),
    (
        "missing intent",
        "POST",
        "/fhir/ServiceRequest",
        _without("intent"),
        FHIR_JSON,
        422,
        "required",
    ),
    (
        "missing subject",
        "POST",
        "/fhir/ServiceRequest",
        _without("subject"),
        FHIR_JSON,
        422,
        "required",
    ),
    (
        "subject is a Group",
        "POST",
        "/fhir/ServiceRequest",
        _sr(subject={"reference": "Group/1"}),
        FHIR_JSON,
        422,
        "invalid",
    ),
    (
        "subject is a Device",
        "POST",
        "/fhir/ServiceRequest",
        _sr(subject={"reference": "Device/7"}),
        FHIR_JSON,
        422,
        "invalid",
    ),
    (
        "unknown element",
        "POST",
        "/fhir/ServiceRequest",
        _sr(colour="blue"),
        FHIR_JSON,
        422,
        "structure",
    ),
    (
        "authoredOn not a date",
        "POST",
        "/fhir/ServiceRequest",
        _sr(authoredOn="yesterday"),
        FHIR_JSON,
        422,
        "value",
    ),
    (
        "identifier system a number",
        "POST",
        "/fhir/ServiceRequest",
        _sr(identifier=[{"system": 5, "value": "x"}]),
        FHIR_JSON,
        422,
        "value",
    ),
    (
        "identifier value not a string",
        "POST",
        "/fhir/ServiceRequest",
        _sr(identifier=[{"system": "urn:x", "value": 7}]),
        FHIR_JSON,
        422,
        "value",
    ),
    (
        "status is a list",
        "POST",
        "/fhir/ServiceRequest",
        _sr(status=["active"]),
        FHIR_JSON,
        422,
        "value",
    ),
    (
        "contained not a resource",
        "POST",
        "/fhir/ServiceRequest",
        _sr(contained=[{"id": "x"}]),
        FHIR_JSON,
        422,
        "value",
    ),
    (
        "reasonCode not a list",
        "POST",
        "/fhir/ServiceRequest",
        _sr(reasonCode="migraine"),
        FHIR_JSON,
        422,
        "value",
    ),
    ("XML wanted", "GET", "/fhir/metadata?_format=xml", None, None, 406, "not-supported"),
    ("unknown referral", "GET", "/fhir/ServiceRequest/nope", None, None, 404, "not-found"),
    ("unknown task", "GET", "/fhir/Task/nope", None, None, 404, "not-found"),
    ("unknown appointment", "GET", "/fhir/Appointment/nope", None, None, 404, "not-found"),
    (
        "unknown version",
        "GET",
        "/fhir/ServiceRequest/nope/_history/x",
        None,
        None,
        404,
        "not-found",
    ),
    ("delete a referral", "DELETE", "/fhir/ServiceRequest/abc", None, None, 405, "not-supported"),
    ("bad _count", "GET", "/fhir/ServiceRequest?_count=many", None, None, 400, "value"),
    (
        "bad _lastUpdated",
        "GET",
        "/fhir/ServiceRequest?_lastUpdated=ge-soon",
        None,
        None,
        400,
        "value",
    ),
    (
        "PUT unknown referral",
        "PUT",
        "/fhir/ServiceRequest/unknown",
        _sr(),
        FHIR_JSON,
        404,
        "not-found",
    ),
    (
        "collection bundle",
        "POST",
        "/fhir",
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}).encode(),
        FHIR_JSON,
        422,
        "invalid",
    ),
    (
        "transaction without entries",
        "POST",
        "/fhir",
        json.dumps({"resourceType": "Bundle", "type": "transaction"}).encode(),
        FHIR_JSON,
        422,
        "required",
    ),
    ("bundle endpoint given a ServiceRequest", "POST", "/fhir", _sr(), FHIR_JSON, 400, "invalid"),
    (
        "evaluate a Patient",
        "POST",
        "/fhir/ServiceRequest/$evaluate",
        json.dumps({"resourceType": "Patient"}).encode(),
        FHIR_JSON,
        400,
        "invalid",
    ),
    (
        "review with no body",
        "POST",
        "/api/referrals/x/review",
        b"",
        "application/json",
        422,
        "structure",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_refused_with_an_operation_outcome(
    client, engine, method, path, body, content_type, status, code
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.open(path, method=method, data=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json(force=True)
    issues = payload["issue"] if "issue" in payload else payload["issues"]
    assert code in {issue["code"] for issue in issues}
    assert all(issue["diagnostics"] for issue in issues)
    with engine.connect() as conn:
        for table in (referrals, tasks, jobs):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_oversized_body_is_413(client, runtime) -> None:
    huge = (
        b'{"resourceType": "ServiceRequest", "note": [{"text": "'
        + b"x" * (runtime.settings.max_body_bytes + 10)
        + b'"}]}'
    )
    response = client.post("/fhir/ServiceRequest", data=huge, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 413
    assert response.get_json(force=True)["issue"][0]["code"] == "too-costly"


def test_expressions_point_at_the_bad_element(client) -> None:
    response = client.post(
        "/fhir/ServiceRequest",
        data=_sr(identifier=[{"system": 5, "value": "x"}], status="bogus"),
        headers={"Content-Type": FHIR_JSON},
    )
    expressions = {e for issue in response.get_json()["issue"] for e in issue["expression"]}
    assert "ServiceRequest.identifier[0].system" in expressions
    assert "ServiceRequest.status" in expressions
