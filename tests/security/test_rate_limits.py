"""Per-client request rate: over budget answers 429 with Retry-After as an OperationOutcome
`throttled`; other clients and the probes are unaffected; with Redis storage several instances
share one budget."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from referral_service.api.app import create_app
from referral_service.runtime import Runtime
from tests.security.conftest import jwt_settings

REDIS_URL = "redis://127.0.0.1:6379"


def _instance(sqlite_url: str, public_key_file: str, **overrides: Any) -> Any:
    settings = jwt_settings(
        sqlite_url, jwt_public_key_file=public_key_file, rate_limit="3/minute", **overrides
    )
    return create_app(runtime=Runtime(settings)).test_client()


def _search(client: Any, headers: dict[str, str]) -> Any:
    return client.get("/fhir/ServiceRequest", headers=headers)


def _assert_throttled(response: Any) -> None:
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "throttled"


def test_a_client_over_its_budget_gets_429(
    sqlite_url: str, public_key_file: str, as_client: Any
) -> None:
    client = _instance(sqlite_url, public_key_file)
    north = as_client("er-north")
    assert [_search(client, north).status_code for _ in range(3)] == [200, 200, 200]
    _assert_throttled(_search(client, north))
    assert _search(client, as_client("er-south")).status_code == 200
    assert all(client.get("/healthz").status_code == 200 for _ in range(10))
    assert all(client.get("/fhir/metadata").status_code == 200 for _ in range(10))


def _redis_or_fail() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI starts it; see .ci/run)")


def test_instances_sharing_redis_share_the_budget(
    sqlite_url: str, public_key_file: str, as_client: Any
) -> None:
    _redis_or_fail()
    first = _instance(sqlite_url, public_key_file, rate_limit_storage_url=REDIS_URL)
    second = _instance(sqlite_url, public_key_file, rate_limit_storage_url=REDIS_URL)
    headers = as_client(f"er-{uuid.uuid4().hex[:8]}")  # a fresh client: no budget left over
    assert _search(first, headers).status_code == 200
    assert _search(second, headers).status_code == 200
    assert _search(first, headers).status_code == 200
    _assert_throttled(_search(second, headers))


def test_an_unreachable_redis_does_not_fail_requests(
    sqlite_url: str, public_key_file: str, as_client: Any
) -> None:
    client = _instance(sqlite_url, public_key_file, rate_limit_storage_url="redis://127.0.0.1:9")
    headers = as_client("er-north")
    statuses = [_search(client, headers).status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]  # limits go on in memory, per instance
    assert statuses[3] == 429
