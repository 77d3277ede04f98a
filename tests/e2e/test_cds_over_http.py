"""CDS Hooks against `referral-service serve` over real HTTP (gunicorn): an allow-listed EHR that
accepts connections and never answers costs the clinician the budget, not gunicorn's timeout;
the card says the chart was not checked; feedback on it is recorded; the logs carry neither the
patient id nor the access token."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.cds.cds_requests import PATIENT_ID, draft_order, hook_request
from tests.integration.cds.ehr_stubs import hanging_ehr
from tests.support.service import serve

URL = "/cds-services/headache-infusion-referral"
# Wall-clock bounds: `make test` runs this module alone, after the parallel tests.
pytestmark = pytest.mark.serial

BUDGET = 1.0
MARGIN = 1.5  # HTTP, gunicorn and evaluation on a loaded two-core machine
TOKEN = "e2e-granted-token-5d1f"


def _sign(base_url: str, ehr: str) -> tuple[requests.Response, float]:
    grant = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "x"}
    body = hook_request([draft_order()], prefetch={}, fhirServer=ehr, fhirAuthorization=grant)
    started = time.monotonic()
    response = requests.post(f"{base_url}{URL}", json=body, timeout=30)
    return response, time.monotonic() - started


def test_a_hanging_ehr_costs_the_budget_over_real_http(tmp_path) -> None:
    with hanging_ehr() as ehr:
        env = {
            "REFERRAL_CDS_EHR_BUDGET_SECONDS": str(BUDGET),
            "REFERRAL_CDS_FHIR_SERVER_ALLOWLIST": ehr,
        }
        with serve(tmp_path, env) as service:
            with ThreadPoolExecutor(4) as pool:  # four signings at once, each within budget
                answers = list(pool.map(lambda _: _sign(service.base_url, ehr), range(4)))
            for response, elapsed in answers:
                assert response.status_code == 200, response.text
                assert elapsed < BUDGET + MARGIN, elapsed
                [card] = response.json()["cards"]
                assert card["summary"].startswith("Chart could not be checked")
                assert "the EHR did not answer in time" in card["detail"]
            feedback = {
                "feedback": [
                    {
                        "card": answers[0][0].json()["cards"][0]["uuid"],
                        "outcome": "overridden",
                        "outcomeTimestamp": "2026-12-02T18:00:00Z",
                    }
                ]
            }
            recorded = requests.post(f"{service.base_url}{URL}/feedback", json=feedback, timeout=5)
            assert recorded.status_code == 200, recorded.text
            metrics = requests.get(f"{service.base_url}/metrics", timeout=5).text
            assert re.search(r'referral_cds_feedback_total\{[^}]*outcome="overridden"', metrics)
            assert "referral_cds_chart_unread_total" in metrics
            logs = service.logs()
    assert PATIENT_ID not in logs
    assert TOKEN not in logs
