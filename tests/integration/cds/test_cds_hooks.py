"""CDS Hooks over HTTP: discovery, order-sign and order-select cards from the same evaluation as
$evaluate, nothing stored, and bad requests refused with an OperationOutcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from referral_service.adapters.db.tables import jobs, referrals
from tests.integration.cds.cds_requests import (
    PATIENT_ID,
    draft_order,
    full_prefetch,
    hook_request,
)

URL = "/cds-services/headache-infusion-referral"


def cards(client, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def test_discovery_declares_both_order_hooks_and_the_prefetch_templates(client) -> None:
    services = client.get("/cds-services").get_json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("headache-infusion-referral", "order-sign"),
        ("headache-infusion-referral-select", "order-select"),
    }
    prefetch = services[0]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert prefetch["conditions"] == "Condition?patient={{context.patientId}}"
    assert prefetch["observations"] == "Observation?patient={{context.patientId}}"
    assert prefetch["medications"] == "MedicationStatement?patient={{context.patientId}}"
    assert all(s["title"] and s["description"] for s in services)


def test_eligible_draft_gets_an_info_card_naming_category_protocol_and_policy(
    client, runtime
) -> None:
    [card] = cards(client, hook_request([draft_order()]))
    assert card["indicator"] == "info"
    assert card["summary"] == (
        "Meets criteria for outpatient infusion (chronic-migraine, standard-infusion)"
        " — for Outpatient headache infusion"
    )
    assert len(card["summary"]) < 140
    assert runtime.policy.version in card["source"]["label"]
    assert runtime.clinic.name in card["source"]["label"]
    assert card["uuid"]


def test_red_flag_gets_a_critical_card_sending_the_patient_to_the_emergency_department(
    client,
) -> None:
    thunderclap = {
        "resourceType": "Condition",
        "id": "tc",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G44.53"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "onsetDateTime": "2026-11-22",
    }
    body = hook_request([draft_order()], prefetch=full_prefetch([thunderclap]))
    [card] = cards(client, body)
    assert card["indicator"] == "critical"
    assert "emergency department" in card["summary"]
    assert "red-flag" in card["detail"]
    assert len(card["summary"]) < 140


def test_missing_data_gets_a_warning_listing_it_with_a_suggestion(client) -> None:
    prefetch = full_prefetch()
    prefetch["patient"]["birthDate"] = None
    del prefetch["patient"]["birthDate"]
    prefetch["observations"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    body = hook_request([draft_order()], prefetch=prefetch)
    del body["fhirServer"]  # nothing more to read: what is not prefetched stays missing
    [card] = cards(client, body)
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Missing data for an infusion referral")
    assert "Suggestion:" in card["detail"]
    assert "birth" in card["detail"].lower()


def test_needs_review_category_says_a_neurologist_decides(client) -> None:
    [card] = cards(client, hook_request([draft_order("G44.22")]))
    assert card["indicator"] == "info"
    assert "review" in card["summary"] and "chronic-tension-type" in card["summary"]


def test_order_select_judges_only_the_selected_draft(client) -> None:
    body = hook_request(
        [draft_order("G44.22", "other"), draft_order("G43.709", "chosen")], hook="order-select"
    )
    body["context"]["selections"] = ["ServiceRequest/chosen"]
    select_url = "/cds-services/headache-infusion-referral-select"
    [card] = client.post(select_url, json=body).get_json()["cards"]
    assert card["summary"].startswith("Meets criteria")
    body["context"]["selections"] = ["ServiceRequest/other"]
    [card] = client.post(select_url, json=body).get_json()["cards"]
    assert "review" in card["summary"]


def test_a_call_with_no_draft_referral_answers_no_cards(client) -> None:
    body = hook_request([])
    body["context"]["draftOrders"]["entry"] = [
        {"resource": {"resourceType": "MedicationRequest", "id": "m1"}}
    ]
    assert cards(client, body) == []


def test_nothing_is_stored(client, runtime) -> None:
    cards(client, hook_request([draft_order()]))
    cards(client, hook_request([draft_order("G44.22")]))
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(referrals)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0


def _outcome(response) -> dict[str, Any]:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return body


def test_malformed_calls_get_400_with_an_operation_outcome(client) -> None:
    good = hook_request([draft_order()])
    broken: list[dict[str, Any]] = [
        {**good, "hook": "patient-view"},
        {k: v for k, v in good.items() if k != "hookInstance"},
        {**good, "context": {"draftOrders": good["context"]["draftOrders"]}},
        {**good, "context": {**good["context"], "draftOrders": [1, 2]}},
        {**good, "prefetch": ["not", "an", "object"]},
        {
            **{k: v for k, v in good.items() if k != "fhirServer"},
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer"},
        },
        {**good, "fhirServer": "ftp://ehr.example.org"},
    ]
    for body in broken:
        response = client.post(URL, json=body)
        assert response.status_code == 400, body
        _outcome(response)
    unreadable = client.post(URL, data=b"{not json", headers={"Content-Type": "application/json"})
    assert unreadable.status_code == 400
    _outcome(unreadable)
    assert client.get(URL).status_code == 405
