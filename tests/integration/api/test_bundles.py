"""POST /fhir: transactions are all or nothing, batches go entry by entry, urn:uuid references
are resolved, and the Bundle's resources inform the decision."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select

from referral_service.adapters.db.tables import referrals, stored_resources
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, ICD10, metric

HEADERS = {"Content-Type": FHIR_JSON}
PATIENT_URL = "urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000001"
CONDITION_URL = "urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000002"


def _entry(full_url: str, resource: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": method, "url": resource["resourceType"]},
    }


def referral_bundle(kind: str = "transaction", identifier: str = "bundle-1") -> dict[str, Any]:
    patient = {
        "resourceType": "Patient",
        "birthDate": "1979-03-03",
        "gender": "male",
        "name": [{"family": "Bundleperson"}],
    }
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": PATIENT_URL},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": ICD10, "code": "G43.709"}]},
        "onsetDateTime": "2024-01-01",
    }
    headache = metric("headache-days-per-month", 18)
    migraine = metric("migraine-days-per-month", 10)
    for observation in (headache, migraine):
        observation.pop("id")
        observation["subject"] = {"reference": PATIENT_URL}
    request = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "https://er.example.org/referrals", "value": identifier}],
        "status": "active",
        "intent": "order",
        "subject": {"reference": PATIENT_URL},
        "authoredOn": "2026-11-23T09:00:00Z",
        "reasonReference": [{"reference": CONDITION_URL}],
    }
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            _entry(PATIENT_URL, patient),
            _entry(CONDITION_URL, condition),
            _entry("urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000003", headache),
            _entry("urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000004", migraine),
            _entry("urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000005", request),
        ],
    }


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_transaction_creates_everything_and_resolves_references(client, runtime) -> None:
    response = client.post("/fhir", json=referral_bundle(), headers=HEADERS)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["type"] == "transaction-response"
    statuses = [entry["response"]["status"] for entry in body["entry"]]
    assert statuses == ["201 Created"] * 5
    location = body["entry"][4]["response"]["location"]
    referral_id = location.split("/fhir/ServiceRequest/")[1].split("/")[0]
    referral = client.get(f"/fhir/ServiceRequest/{referral_id}").get_json()
    patient_ref = referral["subject"]["reference"]
    assert patient_ref.startswith("Patient/") and not patient_ref.startswith("urn:")
    assert body["entry"][0]["response"]["location"].endswith(f"{patient_ref}/_history/1")

    Worker(runtime).run_until_idle()
    task = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()["entry"][0][
        "resource"
    ]
    assert task["businessStatus"]["coding"][0]["code"] == "booked", task.get("note")


def test_invalid_entry_rolls_back_the_whole_transaction(client, engine) -> None:
    bundle = referral_bundle()
    bundle["entry"][1]["resource"]["onsetDateTime"] = "not a date"
    response = client.post("/fhir", json=bundle, headers=HEADERS)
    assert response.status_code == 422
    expressions = {e for i in response.get_json()["issue"] for e in i.get("expression", [])}
    assert any(e.startswith("Bundle.entry[1].resource") for e in expressions)
    assert _count(engine, referrals) == 0
    assert _count(engine, stored_resources) == 0


def test_the_same_transaction_twice_makes_one_referral(client, engine) -> None:
    first = client.post("/fhir", json=referral_bundle(), headers=HEADERS)
    second = client.post("/fhir", json=referral_bundle(), headers=HEADERS)
    assert first.status_code == second.status_code == 200
    assert second.get_json()["entry"][4]["response"]["status"] == "200 OK"
    assert _count(engine, referrals) == 1
    assert _count(engine, stored_resources) == 4


def test_batch_keeps_good_entries_and_reports_bad_ones(client, engine) -> None:
    bundle = referral_bundle("batch")
    bad = copy.deepcopy(bundle["entry"][4])
    bad["resource"]["status"] = "bogus"
    bundle["entry"].append(bad)
    response = client.post("/fhir", json=bundle, headers=HEADERS)
    assert response.status_code == 200
    entries = response.get_json()["entry"]
    assert entries[4]["response"]["status"] == "201 Created"
    assert entries[5]["response"]["status"].startswith("422")
    assert entries[5]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert _count(engine, referrals) == 1


def test_unsupported_entry_type_is_refused(client, engine) -> None:
    bundle = referral_bundle()
    bundle["entry"].append(_entry("urn:uuid:x", {"resourceType": "Account", "status": "active"}))
    response = client.post("/fhir", json=bundle, headers=HEADERS)
    assert response.status_code == 422
    assert _count(engine, referrals) == 0
