"""Criteria section 8 items 1-2 over HTTP: a transaction whose MedicationRequest names its drug
through a Medication entry of the Bundle (a brand name) informs the decision, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from referral_service.worker import Worker
from tests.integration.api.test_bundles import HEADERS, PATIENT_URL, _entry, referral_bundle

MEDICATION_URL = "urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000010"


def _with_eliquis(bundle: dict[str, Any]) -> dict[str, Any]:
    medication = {
        "resourceType": "Medication",
        "code": {"text": "ELIQUIS 5 MG TABLET"},
        "form": {"text": "Tablet"},
    }
    prescription = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": PATIENT_URL},
        "medicationReference": {"reference": MEDICATION_URL},
        "dispenseRequest": {"expectedSupplyDuration": {"value": 90, "code": "d"}},
    }
    bundle["entry"][-1:-1] = [
        _entry(MEDICATION_URL, medication),
        _entry("urn:uuid:5b3c3a59-1d1e-4f4e-9d0f-000000000011", prescription),
    ]
    return bundle


def test_a_bundle_medication_names_the_prescribed_drug(client, runtime) -> None:
    response = client.post("/fhir", json=_with_eliquis(referral_bundle()), headers=HEADERS)
    assert response.status_code == 200, response.get_json()
    statuses = [entry["response"]["status"] for entry in response.get_json()["entry"]]
    assert statuses == ["201 Created"] * 7
    location = response.get_json()["entry"][-1]["response"]["location"]
    referral_id = location.split("/fhir/ServiceRequest/")[1].split("/")[0]

    Worker(runtime).run_until_idle()
    details = client.get(f"/api/referrals/{referral_id}").get_json()
    decision = details["decision"]
    assert decision["excluded_drugs"] == ["ketorolac"], decision
    (exclusion,) = [r for r in decision["reasons"] if r["rule"] == "exclusion.ketorolac"]
    assert "apixaban (eliquis, MedicationRequest via Medication Medication/" in exclusion["detail"]
