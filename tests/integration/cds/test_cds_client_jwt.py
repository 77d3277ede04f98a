"""The CDS client's JWT (CDS Hooks 2.0 "Trusting CDS Clients"): signed by the EHR's key from the
configured JWKS, iss a trusted client, aud the endpoint called, a jti used once."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.integration.cds.cds_requests import draft_order, hook_request
from tests.integration.cds.jwt_mode import access_token, jwt_mode_app

ISSUER = "https://ehr.example.org"
SERVICE = "http://localhost/cds-services/headache-infusion-referral"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # stores nothing: one database kind is enough here


@pytest.fixture
def ehr_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def trusted_client(ehr_key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ehr_key.public_key()))
    jwks = tmp_path / "ehr-jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "ehr-1", "alg": "RS384", "use": "sig"}]}))
    monkeypatch.setenv("REFERRAL_CDS_JWKS_FILE", str(jwks))
    monkeypatch.setenv("REFERRAL_CDS_ISSUERS", f"{ISSUER},https://other-ehr.example.org")


def signed(key: Any, *, algorithm: str = "RS384", kid: str = "ehr-1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": SERVICE,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})


def call(client, token: str | None, url: str = "/cds-services/headache-infusion-referral"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if url == "/cds-services":
        return client.get(url, headers=headers)
    return client.post(url, json=hook_request([draft_order()]), headers=headers)


def test_a_token_signed_by_the_trusted_ehr_is_accepted(client, ehr_key, trusted_client) -> None:
    response = call(client, signed(ehr_key))
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["indicator"] == "info"
    discovery = call(client, signed(ehr_key, aud="http://localhost/cds-services"), "/cds-services")
    assert discovery.status_code == 200


def test_a_jti_is_accepted_once(client, ehr_key, trusted_client) -> None:
    token = signed(ehr_key)
    assert call(client, token).status_code == 200
    replay = call(client, token)
    assert replay.status_code == 401
    assert replay.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "https://elsewhere.example.org/cds-services/headache-infusion-referral"},
        {"iss": "https://untrusted.example.org"},
        {"exp": int(time.time()) - 3600},
        {"jti": None},
        {"iat": None},
    ],
    ids=["wrong-aud", "untrusted-iss", "expired", "no-jti", "no-iat"],
)
def test_bad_claims_are_refused(client, ehr_key, trusted_client, change) -> None:
    response = call(client, signed(ehr_key, **change))
    assert response.status_code == 401
    assert response.get_json()["issue"][0]["code"] == "security"
    assert "WWW-Authenticate" in response.headers


def test_other_keys_and_algorithms_are_refused(client, ehr_key, trusted_client) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert call(client, signed(stranger)).status_code == 401
    assert call(client, signed(ehr_key, kid="unknown")).status_code == 401
    # The JWKS declares RS384 for this key: the same key under RS256 is not accepted.
    assert call(client, signed(ehr_key, algorithm="RS256")).status_code == 401
    assert call(client, signed("shared-secret-" * 3, algorithm="HS256")).status_code == 401
    other_curve = ec.generate_private_key(ec.SECP384R1())
    assert call(client, signed(other_curve, algorithm="ES384")).status_code == 401
    assert call(client, "not.a.jwt").status_code == 401
    assert call(client, None).status_code == 401
    assert call(client, None, "/cds-services").status_code == 401


def test_without_a_configured_client_and_auth_off_no_token_is_needed(client) -> None:
    assert call(client, None).status_code == 200


def test_with_auth_on_and_no_cds_client_configured_calls_get_503_not_500(
    sqlite_url, tmp_path: Path
) -> None:
    app, _ = jwt_mode_app(sqlite_url, tmp_path)
    client = app.test_client()
    for response in (call(client, None), call(client, None, "/cds-services")):
        assert response.status_code == 503
        assert response.get_json()["issue"][0]["code"] == "not-supported"


def test_with_auth_on_the_cds_client_jwt_is_what_counts(
    sqlite_url, tmp_path: Path, ehr_key, trusted_client
) -> None:
    app, auth_key = jwt_mode_app(sqlite_url, tmp_path)
    client = app.test_client()
    assert call(client, None).status_code == 401
    referrer = access_token(auth_key, "referrer-1", "system/ServiceRequest.c")
    assert call(client, referrer).status_code == 401  # an API token is not a CDS client JWT
    accepted = call(client, signed(ehr_key))
    assert accepted.status_code == 200
    assert accepted.get_json()["cards"][0]["indicator"] == "info"
