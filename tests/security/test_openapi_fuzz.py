"""Schemathesis against the staff API's own OpenAPI document (/api/openapi.json), in process on
the WSGI app, with every check it has: no 5xx, every status and response body as documented,
every request the document allows accepted and every one it forbids refused (issue 18).
Bounded in time: a fixed number of examples per operation and mode."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks

from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.runtime import Runtime
from tests.support.referrals import FHIR_JSON, eligible_referral

EXAMPLES = 60
TIME_BUDGET_SECONDS = 60.0


@pytest.fixture
def staff_api(tmp_path: Path) -> Any:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'openapi.db'}", rate_limit="1000000/minute"
    )
    app = create_app(runtime=Runtime(settings))
    created = app.test_client().post(
        "/fhir/ServiceRequest",
        json=eligible_referral("openapi-1"),
        headers={"Content-Type": FHIR_JSON},
    )
    assert created.status_code == 201
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def test_the_staff_api_is_its_openapi_document(staff_api: Any) -> None:
    # Driven through hypothesis directly: schemathesis' pytest plugin does not load on pytest 9.
    operations = [result.ok() for result in staff_api.get_all_operations()]
    assert len(operations) >= 4
    load_all_checks()
    every_check = CHECKS.get_all()
    assert len(every_check) >= 10
    sent: list[int] = []
    started = time.monotonic()
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in [(op, mode) for op in operations for mode in modes]:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode))
        def one_case(case: Any) -> None:
            sent.append(case.call_and_validate(checks=every_check).status_code)

        try:
            one_case()
        except Unsatisfiable:
            continue  # no negative case exists for this operation
    assert len(sent) >= 4 * 2 * 20
    assert time.monotonic() - started < TIME_BUDGET_SECONDS * 2  # bounded even on a busy host


def test_empty_values_follow_one_rule(staff_api: Any) -> None:
    client = staff_api.app.test_client()
    for name in ("status", "decision", "count", "offset"):
        response = client.get(f"/api/referrals?{name}=")
        assert response.status_code == 422, name


def test_unknown_ids_are_404_on_every_route(staff_api: Any) -> None:
    client = staff_api.app.test_client()
    assert client.get("/api/referrals/unknown").status_code == 404
    review = client.post("/api/referrals/unknown/review", json={"action": "approve"})
    assert review.status_code == 404
    assert client.post("/api/referrals/unknown/retry").status_code == 404
