"""The auth matrix: every kind of bad token is refused with the right status, as an
OperationOutcome, and leaves nothing stored; a good one gets in as its own client."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.security.conftest import stored_rows
from tests.security.tokens import (
    AUDIENCE,
    KeyPair,
    bearer,
    claims,
    ec_pair,
    hs256_with_public_key,
    rsa_pair,
    sign,
    unsigned,
)
from tests.support.referrals import FHIR_JSON, eligible_referral

HOUR = 3600


def _bad_tokens(key: KeyPair) -> dict[str, str | None]:
    stranger = rsa_pair("rsa-1")  # same kid, different key: a forged signature
    now = int(time.time())
    return {
        "no token": None,
        "garbage": "not-a-jwt",
        "expired": sign(key, claims(exp=now - HOUR, iat=now - 2 * HOUR, nbf=now - 2 * HOUR)),
        "not yet valid": sign(key, claims(nbf=now + HOUR)),
        "no exp": sign(key, claims(exp=None)),
        "wrong audience": sign(key, claims(aud="https://elsewhere.example.org/fhir")),
        "wrong issuer": sign(key, claims(iss="https://evil.example.org")),
        "bad signature": sign(stranger, claims()),
        "alg none": unsigned(claims()),
        "HS256 with the public key": hs256_with_public_key(key, claims()),
        "wrong key type": sign(ec_pair("rsa-1"), claims()),
        "no client": sign(key, claims(sub=None, client_id=None)),
    }


REQUESTS: list[tuple[str, str]] = [
    ("POST", "/fhir/ServiceRequest"),
    ("POST", "/fhir"),
    ("POST", "/fhir/ServiceRequest/$evaluate"),
    ("GET", "/fhir/ServiceRequest"),
    ("GET", "/fhir/Task"),
    ("GET", "/api/referrals"),
    ("GET", "/fhir/AuditEvent"),
]


def first_issue_code(response: Any) -> str:
    """An OperationOutcome under /fhir; the staff API's JSON error carries the same issues."""
    body = response.get_json()
    if "resourceType" in body:
        assert body["resourceType"] == "OperationOutcome"
        return str(body["issue"][0]["code"])
    return str(body["issues"][0]["code"])


def _send(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    body = eligible_referral("matrix-1") if method == "POST" else None
    return client.open(
        path, method=method, json=body, headers={**headers, "Content-Type": FHIR_JSON}
    )


@pytest.mark.parametrize("method,path", REQUESTS)
def test_every_bad_token_is_refused_with_401_and_nothing_is_stored(
    auth_client: Any, auth_app: Any, signing_key: KeyPair, method: str, path: str
) -> None:
    engine = auth_app.extensions["referral_service"].engine
    before = stored_rows(engine)
    for name, token in _bad_tokens(signing_key).items():
        response = _send(auth_client, method, path, bearer(token) if token else {})
        assert response.status_code == 401, (name, response.get_json())
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert first_issue_code(response) == "security", name
    assert stored_rows(engine) == before


@pytest.mark.parametrize(
    "method,path,scope",
    [
        ("POST", "/fhir/ServiceRequest", "system/ServiceRequest.rs"),
        ("POST", "/fhir", "system/Task.rs system/ServiceRequest.r"),
        ("PUT", "/fhir/ServiceRequest/abc", "system/ServiceRequest.c"),
        ("GET", "/fhir/ServiceRequest", "system/ServiceRequest.cu system/Task.s"),
        ("GET", "/fhir/Task/abc", "system/ServiceRequest.rs"),
        ("GET", "/fhir/Appointment", "system/ServiceRequest.rs system/Task.rs"),
        ("GET", "/api/referrals", "system/*.*"),
        ("POST", "/api/referrals/abc/review", "system/ServiceRequest.cruds"),
        ("GET", "/fhir/AuditEvent", "system/*.rs"),
        ("GET", "/fhir/ServiceRequest", "user/ServiceRequest.rs patient/*.read"),
    ],
)
def test_a_valid_token_without_the_scope_gets_403(
    auth_client: Any, auth_app: Any, as_client: Any, method: str, path: str, scope: str
) -> None:
    engine = auth_app.extensions["referral_service"].engine
    before = stored_rows(engine)
    response = _send(auth_client, method, path, as_client("er-north", scope))
    assert response.status_code == 403, response.get_json()
    assert first_issue_code(response) == "forbidden"
    assert stored_rows(engine) == before


def test_a_good_token_refers_as_its_own_client(auth_client: Any, as_client: Any) -> None:
    created = _send(auth_client, "POST", "/fhir/ServiceRequest", as_client("er-north"))
    assert created.status_code == 201, created.get_json()
    listed = auth_client.get(
        "/api/referrals", headers=as_client("ops-desk", "system/referral-service.staff")
    )
    assert listed.status_code == 200
    assert [item["sender"] for item in listed.get_json()["items"]] == ["er-north"]


@pytest.mark.parametrize("scope", ["system/ServiceRequest.write", "system/*.write", "system/*.*"])
def test_smart_v1_write_scopes_may_refer(auth_client: Any, as_client: Any, scope: str) -> None:
    response = _send(auth_client, "POST", "/fhir/ServiceRequest", as_client("er-v1", scope))
    assert response.status_code == 201, response.get_json()


def test_an_es256_key_is_accepted_through_its_own_pem(
    tmp_path: Any, database_url: str, engine: Any
) -> None:
    from referral_service.api.app import create_app
    from referral_service.runtime import Runtime
    from tests.security.conftest import jwt_settings

    pair = ec_pair()
    pem = tmp_path / "ec.pem"
    pem.write_bytes(pair.public_pem)
    app = create_app(
        runtime=Runtime(jwt_settings(database_url, jwt_public_key_file=str(pem)), engine)
    )
    token = sign(pair, claims(scope="system/ServiceRequest.rs"))
    assert app.test_client().get("/fhir/ServiceRequest", headers=bearer(token)).status_code == 200
    assert claims()["aud"] == AUDIENCE


@pytest.mark.parametrize("path", ["/fhir/metadata", "/healthz", "/readyz", "/metrics"])
def test_open_endpoints_need_no_token(auth_client: Any, path: str) -> None:
    assert auth_client.get(path).status_code == 200


def test_capability_statement_declares_smart_on_fhir(auth_client: Any) -> None:
    rest = auth_client.get("/fhir/metadata").get_json()["rest"][0]
    codes = [c["code"] for s in rest["security"]["service"] for c in s["coding"]]
    assert codes == ["SMART-on-FHIR"]
    assert "AuditEvent" in [resource["type"] for resource in rest["resource"]]
