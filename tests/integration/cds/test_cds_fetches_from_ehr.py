"""What the EHR did not prefetch, the service reads from the request's fhirServer with the
access token in fhirAuthorization: against a real FHIR server (SEKMET, SMART auth)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from referral_service.adapters.ehr.client import FhirClient
from referral_service.config import Settings
from tests.integration.cds.cds_requests import chart_observations, draft_order, hook_request

pytestmark = pytest.mark.ehr
URL = "/cds-services/headache-infusion-referral"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # the CDS service stores nothing


@pytest.fixture
def settings(database_url: str, sekmet_server) -> Settings:  # type: ignore[no-untyped-def]
    """The test EHR is on the allow-list: only then is it read."""
    return Settings(database_url=database_url, cds_fhir_server_allowlist=(sekmet_server.base_url,))


@pytest.fixture
def ehr(sekmet_server):  # type: ignore[no-untyped-def]
    settings = Settings.from_env(environ=sekmet_server.env())
    with FhirClient.from_settings(settings) as client:
        yield client


def _chart_on_ehr(ehr: FhirClient) -> str:
    patient = ehr.create(
        {
            "resourceType": "Patient",
            "identifier": [{"system": "https://ehr.example.org/mrn", "value": uuid.uuid4().hex}],
            "birthDate": "1980-04-02",
            "gender": "female",
        }
    )
    for observation in chart_observations():
        observation = {k: v for k, v in observation.items() if k != "id"}
        observation["subject"] = {"reference": f"Patient/{patient['id']}"}
        ehr.create(observation)
    return str(patient["id"])


def _call_without_prefetch(server_url: str, patient_id: str, **grant: Any) -> dict[str, Any]:
    order = draft_order(subject={"reference": f"Patient/{patient_id}"})
    body = hook_request([order], prefetch={}, fhirServer=server_url, **grant)
    body["context"]["patientId"] = patient_id
    return body


def test_missing_prefetch_is_read_from_the_fhir_server_with_the_granted_token(
    client, ehr, sekmet_server
) -> None:
    patient_id = _chart_on_ehr(ehr)
    token = str(ehr.auth.authorization()).removeprefix("Bearer ")
    grant = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "headache-infusion-referral",
    }
    body = _call_without_prefetch(sekmet_server.base_url, patient_id, fhirAuthorization=grant)
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.get_json()
    [card] = response.get_json()["cards"]
    assert card["indicator"] == "info", card
    assert card["summary"].startswith("Meets criteria for outpatient infusion")


def test_without_the_token_the_reads_fail_and_the_card_says_the_chart_was_not_checked(
    client, ehr, sekmet_server
) -> None:
    patient_id = _chart_on_ehr(ehr)
    body = _call_without_prefetch(sekmet_server.base_url, patient_id)
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.get_json()
    [card] = response.get_json()["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Chart could not be checked")
    assert "the EHR refused the read (HTTP 401)" in card["detail"]
    assert "add these to the chart" not in card["detail"]
