"""The audit trail: creates, reads, searches, decisions, bookings, reviews and cancellations
recorded with who, what, outcome and source address (no clinical content), served as valid R4
AuditEvent resources to staff only, searchable by date, entity and agent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from referral_service.worker import Worker
from tests.security.conftest import both_databases
from tests.support.referrals import eligible_referral

STAFF = "system/referral-service.staff"


def _events(client: Any, staff: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    bundle = client.get(f"/fhir/AuditEvent?_count=100{query}", headers=staff).get_json()
    return [entry["resource"] for entry in bundle.get("entry", [])]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return both_databases(request)


def _summary(event: dict[str, Any]) -> tuple[str, str, str, str]:
    entity = event.get("entity", [{}])[0]
    what = entity.get("what", {}).get("reference") or entity.get("type", {}).get("code", "")
    who = event["agent"][0]["who"]["identifier"]["value"]
    return (event["action"], event["subtype"][0]["code"], what, who)


@pytest.fixture
def flow(auth_client: Any, auth_app: Any, as_client: Any) -> dict[str, Any]:
    """er-north refers (the worker decides and books), reads, searches, then revokes."""
    north = as_client("er-north")
    referral = eligible_referral("audit-1")
    created = auth_client.post("/fhir/ServiceRequest", json=referral, headers=north)
    referral_id = created.get_json()["id"]
    runtime = auth_app.extensions["referral_service"]
    Worker(runtime).run_until_idle()
    auth_client.get(f"/fhir/ServiceRequest/{referral_id}", headers=north)
    auth_client.get(
        "/fhir/ServiceRequest?identifier=https://er.example.org/referrals|audit-1", headers=north
    )
    auth_client.get("/fhir/ServiceRequest/not-mine", headers=as_client("er-south"))
    auth_client.post("/fhir/Task/_search", data={"status": "ready"}, headers=north)
    auth_client.get(f"/fhir/ServiceRequest/{referral_id}/_history", headers=north)
    referral.update(id=referral_id, status="revoked")
    auth_client.put(
        f"/fhir/ServiceRequest/{referral_id}", json=referral, headers={**north, "If-Match": 'W/"1"'}
    )
    Worker(runtime).run_until_idle()
    return {"referral": referral_id, "staff": as_client("ops-desk", STAFF)}


def test_each_step_is_recorded(auth_client: Any, flow: dict[str, Any]) -> None:
    ref = f"ServiceRequest/{flow['referral']}"
    events = [_summary(e) for e in _events(auth_client, flow["staff"])]
    for expected in [
        ("C", "create", ref, "er-north"),
        ("E", "decision", ref, "referral-service-worker"),
        ("C", "booking", ref, "referral-service-worker"),
        ("R", "read", ref, "er-north"),
        ("E", "search-type", "ServiceRequest", "er-north"),
        ("R", "read", "ServiceRequest/not-mine", "er-south"),
        ("E", "search-type", "Task", "er-north"),
        ("R", "history-instance", ref, "er-north"),
        ("U", "update", ref, "er-north"),
        ("U", "cancellation", ref, "referral-service-worker"),
    ]:
        assert expected in events, expected


def test_events_are_valid_r4_audit_events_without_clinical_content(
    auth_client: Any, flow: dict[str, Any]
) -> None:
    events = _events(auth_client, flow["staff"])
    assert events
    for event in events:
        AuditEvent.model_validate(event)
        assert event["agent"][0]["requestor"] is True
        assert event["outcome"] in ("0", "4", "8")
    text = json.dumps(events)
    for clinical in ("Testperson", "1980-04-02", "audit-1", "G43.709", "Chronic migraine"):
        assert clinical not in text
    outcomes = {(e["action"], e["outcome"]) for e in events if "not-mine" in json.dumps(e)}
    assert outcomes == {("R", "4")}  # the 404 is a minor failure


def test_request_events_name_the_source_address(auth_client: Any, flow: dict[str, Any]) -> None:
    created = [e for e in _events(auth_client, flow["staff"]) if _summary(e)[1] == "create"]
    assert created[0]["agent"][0]["network"] == {"address": "127.0.0.1", "type": "2"}


def test_search_by_entity_agent_and_date(auth_client: Any, flow: dict[str, Any]) -> None:
    staff, ref = flow["staff"], f"ServiceRequest/{flow['referral']}"
    by_entity = _events(auth_client, staff, f"&entity={ref}")
    assert by_entity and all(_summary(e)[2] == ref for e in by_entity)
    by_agent = _events(auth_client, staff, "&agent=er-south")
    assert [_summary(e)[3] for e in by_agent] == ["er-south"]
    assert _events(auth_client, staff, "&date=ge2000-01-01")
    assert _events(auth_client, staff, "&date=lt2000-01-01") == []
    one = by_agent[0]
    read = auth_client.get(f"/fhir/AuditEvent/{one['id']}", headers=staff)
    assert read.status_code == 200 and read.get_json()["id"] == one["id"]
    assert auth_client.get("/fhir/AuditEvent/nope", headers=staff).status_code == 404
    assert auth_client.get("/fhir/AuditEvent?date=yesterday", headers=staff).status_code == 400


def test_only_staff_read_the_trail(auth_client: Any, as_client: Any, flow: dict[str, Any]) -> None:
    everything = "system/*.cruds system/ServiceRequest.rs"
    assert (
        auth_client.get("/fhir/AuditEvent", headers=as_client("er-north", everything)).status_code
        == 403
    )
    assert auth_client.get("/fhir/AuditEvent").status_code == 401


def test_a_staff_review_is_recorded(auth_client: Any, auth_app: Any, as_client: Any) -> None:
    referral = eligible_referral("audit-review")
    referral["reasonCode"][0]["coding"][0].update(code="G44.22", display="tension-type")
    created = auth_client.post("/fhir/ServiceRequest", json=referral, headers=as_client())
    referral_id = created.get_json()["id"]
    Worker(auth_app.extensions["referral_service"]).run_until_idle()
    staff = as_client("ops-desk", STAFF)
    reviewed = auth_client.post(
        f"/api/referrals/{referral_id}/review",
        json={"action": "approve", "note": "Fine for infusion"},
        headers=staff,
    )
    assert reviewed.status_code == 200, reviewed.get_json()
    events = [_summary(e) for e in _events(auth_client, staff)]
    assert ("U", "review", f"ServiceRequest/{referral_id}", "ops-desk") in events
    assert "Fine for infusion" not in json.dumps(_events(auth_client, staff))


def test_refused_tokens_are_recorded_as_anonymous_failures(
    auth_client: Any, as_client: Any
) -> None:
    assert auth_client.get("/fhir/ServiceRequest").status_code == 401
    wrong_scope = as_client("er-north", "system/Task.rs")
    assert auth_client.get("/fhir/ServiceRequest", headers=wrong_scope).status_code == 403
    events = [
        (_summary(e)[3], e["outcome"])
        for e in _events(auth_client, as_client("ops-desk", STAFF), "&entity=ServiceRequest")
    ]
    assert ("anonymous", "4") in events and ("er-north", "4") in events
