"""Control characters at every edge (issue 18): each request is refused 4xx with an issue that
names where, on SQLite and PostgreSQL alike, and nothing is stored. PostgreSQL cannot store
U+0000 at all; before this guard it answered 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from referral_service.adapters.db.tables import jobs, referrals, webhook_events
from referral_service.config import Settings
from tests.support.referrals import FHIR_JSON, service_request

SECRET = "control-character-webhook-secret"
BEARER = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, job_backoff_base_seconds=0.0, webhook_secret=SECRET)


def _sr(change: Any) -> bytes:
    resource = service_request()
    change(resource)
    return json.dumps(resource).encode()


def _set(path: str, value: Any) -> Any:
    def change(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = resource
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


def _bundle(poison: str) -> bytes:
    resource = json.loads(_sr(_set("identifier.0.value", poison)))
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:0b9b7b8e-5d43-4c39-9e55-3d1d0f6a9d11",
                    "resource": resource,
                    "request": {"method": "POST", "url": "ServiceRequest"},
                }
            ],
        }
    ).encode()


NUL = "\u0000"
# (case, method, url, body, content type, headers, where the issue must point)
CASES: list[tuple[str, str, str, bytes | None, str | None, dict[str, str], str]] = [
    # FHIR API bodies
    (
        "identifier NUL",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set("identifier.0.value", f"nul{NUL}x")),
        FHIR_JSON,
        {},
        "ServiceRequest.identifier[0].value",
    ),
    (
        "system NUL",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set("identifier.0.system", f"https://a{NUL}")),
        FHIR_JSON,
        {},
        "ServiceRequest.identifier[0].system",
    ),
    (
        "subject reference NUL",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set("subject", {"reference": f"Patient/p{NUL}"})),
        FHIR_JSON,
        {},
        "ServiceRequest.subject.reference",
    ),
    (
        "note bell",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set("note", [{"text": "ring\u0007"}])),
        FHIR_JSON,
        {},
        "ServiceRequest.note[0].text",
    ),
    (
        "escape in display",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set("reasonCode.0.coding.0.display", "\u001b[31m")),
        FHIR_JSON,
        {},
        "ServiceRequest.reasonCode[0].coding[0].display",
    ),
    (
        "contained name NUL",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set("contained.0.name.0.family", f"Doe{NUL}")),
        FHIR_JSON,
        {},
        "ServiceRequest.contained[0].name[0].family",
    ),
    (
        "element name NUL",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set(f"status{NUL}", "active")),
        FHIR_JSON,
        {},
        "ServiceRequest",
    ),
    (
        "vertical tab",
        "POST",
        "/fhir/ServiceRequest",
        _sr(_set("authoredOn", "2026-11-23\u000b")),
        FHIR_JSON,
        {},
        "ServiceRequest.authoredOn",
    ),
    (
        "update body NUL",
        "PUT",
        "/fhir/ServiceRequest/abc",
        _sr(lambda r: r.update(id="abc", priority=f"routine{NUL}")),
        FHIR_JSON,
        {},
        "ServiceRequest.priority",
    ),
    (
        "evaluate body NUL",
        "POST",
        "/fhir/ServiceRequest/$evaluate",
        _sr(_set("identifier.0.value", NUL)),
        FHIR_JSON,
        {},
        "ServiceRequest.identifier[0].value",
    ),
    (
        "bundle entry NUL",
        "POST",
        "/fhir",
        _bundle(f"b{NUL}"),
        FHIR_JSON,
        {},
        "Bundle.entry[0].resource.identifier[0].value",
    ),
    (
        "pushed Patient NUL",
        "POST",
        "/fhir/Patient",
        json.dumps({"resourceType": "Patient", "name": [{"family": f"x{NUL}"}]}).encode(),
        FHIR_JSON,
        {},
        "Patient.name[0].family",
    ),
    (
        "placer Task NUL",
        "POST",
        "/fhir/Task",
        json.dumps(
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "focus": {"reference": f"ServiceRequest/{NUL}"},
            }
        ).encode(),
        FHIR_JSON,
        {},
        "Task.focus.reference",
    ),
    # FHIR search parameters and path ids
    ("search status NUL", "GET", "/fhir/Task?status=%00", None, None, {}, "status"),
    (
        "search identifier NUL",
        "GET",
        "/fhir/ServiceRequest?identifier=a%00b",
        None,
        None,
        {},
        "identifier",
    ),
    ("search parameter name NUL", "GET", "/fhir/ServiceRequest?na%00me=x", None, None, {}, "na?me"),
    ("appointment search control", "GET", "/fhir/Appointment?status=%1F", None, None, {}, "status"),
    ("audit search DEL", "GET", "/fhir/AuditEvent?date=%7F", None, None, {}, "date"),
    ("referral id NUL", "GET", "/fhir/ServiceRequest/ab%00c", None, None, {}, ""),
    ("task id NUL", "GET", "/fhir/Task/%00", None, None, {}, ""),
    ("appointment id control", "GET", "/fhir/Appointment/x%01", None, None, {}, ""),
    ("history version NUL", "GET", "/fhir/ServiceRequest/abc/_history/1%00", None, None, {}, ""),
    ("patient id NUL", "GET", "/fhir/Patient/p%00", None, None, {}, ""),
    # Staff API
    ("staff status NUL", "GET", "/api/referrals?status=%00", None, None, {}, "status"),
    ("staff decision control", "GET", "/api/referrals?decision=%02", None, None, {}, "decision"),
    ("staff id NUL", "GET", "/api/referrals/a%00", None, None, {}, ""),
    (
        "staff review id NUL",
        "POST",
        "/api/referrals/a%00/review",
        json.dumps({"action": "approve"}).encode(),
        "application/json",
        {},
        "",
    ),
    (
        "staff review note NUL",
        "POST",
        "/api/referrals/abc/review",
        json.dumps({"action": "approve", "note": f"ok{NUL}"}).encode(),
        "application/json",
        {},
        "$.note",
    ),
    ("staff retry id control", "POST", "/api/referrals/%1B/retry", None, None, {}, ""),
    # Webhooks and CDS Hooks
    (
        "webhook resource NUL",
        "POST",
        "/webhooks/fhir",
        _sr(lambda r: r.update(id="ehr-1", identifier=[{"system": "s", "value": NUL}])),
        FHIR_JSON,
        BEARER,
        "ServiceRequest.identifier[0].value",
    ),
    (
        "webhook PUT NUL",
        "PUT",
        "/webhooks/fhir/ServiceRequest/ehr-2",
        _sr(lambda r: r.update(id="ehr-2", priority=f"stat{NUL}")),
        FHIR_JSON,
        BEARER,
        "ServiceRequest.priority",
    ),
    (
        "webhook path id NUL",
        "PUT",
        "/webhooks/fhir/ServiceRequest/e%00",
        _sr(lambda r: r.update(id=f"e{NUL}")),
        FHIR_JSON,
        BEARER,
        "",
    ),
    (
        "webhook notification NUL",
        "POST",
        "/webhooks/fhir",
        json.dumps(
            {"resourceType": "Bundle", "type": "history", "entry": [{"fullUrl": f"urn:{NUL}"}]}
        ).encode(),
        FHIR_JSON,
        BEARER,
        "Bundle.entry[0].fullUrl",
    ),
    (
        "cds hook NUL",
        "POST",
        "/cds-services/headache-infusion-referral",
        json.dumps({"hook": f"order-sign{NUL}"}).encode(),
        "application/json",
        {},
        "$.hook",
    ),
]


def _issue_expressions(response: Any) -> list[str]:
    body = response.get_json(force=True)
    issues = body.get("issue") or body.get("issues") or []
    return [e for issue in issues for e in issue.get("expression", [])]


@pytest.mark.parametrize(
    ("method", "url", "body", "content_type", "headers", "where"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_control_character_is_refused_where_it_is(
    client: Any,
    engine: Any,
    method: str,
    url: str,
    body: bytes | None,
    content_type: str | None,
    headers: dict[str, str],
    where: str,
) -> None:
    response = client.open(
        url, method=method, data=body, content_type=content_type, headers=headers
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:300])
    text = response.get_data(as_text=True)
    assert "control character U+00" in text
    if where:
        assert where in _issue_expressions(response)
    else:
        assert "the URL path" in text
    with engine.connect() as conn:
        for table in (referrals, jobs, webhook_events):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_the_corpus_covers_every_edge() -> None:
    assert len(CASES) >= 25
    prefixes = {case[2].split("?")[0].split("/")[1] for case in CASES}
    assert {"fhir", "api", "webhooks", "cds-services"} <= prefixes


def test_console_form_fields_follow_the_fhir_string_rule(client: Any) -> None:
    url = "/console/referrals/abc/review"
    refused = client.post(url, data={"action": "approve", "note": "ok\u0000"})
    assert refused.status_code == 400
    assert "form field note holds the control character U+0000" in refused.get_data(as_text=True)
    lines = client.post(url, data={"action": "approve", "note": "line one\r\nline two"})
    assert "control character" not in lines.get_data(as_text=True)  # a note may span lines


def test_tab_line_feed_and_carriage_return_stay_allowed(client: Any) -> None:
    body = _sr(_set("note", [{"text": "line one\r\n\tline two"}]))
    response = client.post("/fhir/ServiceRequest", data=body, content_type=FHIR_JSON)
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
