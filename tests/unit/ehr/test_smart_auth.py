"""SMART Backend Services: signed client assertions, token caching, one refresh on 401."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from referral_service.adapters.ehr.auth import ASSERTION_TYPE, SmartBackendAuth
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrAuthError, EhrUnavailable
from referral_service.config import Settings

BASE = "https://ehr.test/fhir"
TOKEN_URL = "https://ehr.test/auth/token"
PATIENT = {"resourceType": "Patient", "id": "p1"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def token_form(call: responses.Call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def token_calls() -> list[responses.Call]:
    return [c for c in responses.calls if c.request.url == TOKEN_URL]


def smart(key: object, clock: Clock | None = None) -> SmartBackendAuth:
    return SmartBackendAuth(
        client_id="svc",
        token_url=TOKEN_URL,
        private_key=key,
        key_id="k1",
        scope="system/*.read",
        clock=clock or Clock(),
    )


@pytest.mark.parametrize(
    "key",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec.generate_private_key(ec.SECP384R1()),
    ],
    ids=["RS384", "ES384"],
)
@responses.activate
def test_assertion_is_signed_and_carries_the_smart_claims(key: object) -> None:
    clock = Clock()
    responses.post(TOKEN_URL, json={"access_token": "t1", "expires_in": 300})
    assert smart(key, clock).authorization() == "Bearer t1"
    form = token_form(token_calls()[0])
    assert form["grant_type"] == "client_credentials" and form["scope"] == "system/*.read"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assertion = form["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    expected_alg = "RS384" if isinstance(key, rsa.RSAPrivateKey) else "ES384"
    assert header["kid"] == "k1" and header["alg"] == expected_alg
    claims = jwt.decode(
        assertion,
        key.public_key(),
        algorithms=[expected_alg],  # type: ignore[attr-defined]
        audience=TOKEN_URL,
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "svc"
    assert 0 < claims["exp"] - clock.now <= 300
    assert claims["jti"]


def test_each_assertion_has_a_fresh_jti() -> None:
    auth = smart(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ids = {
        jwt.decode(auth.client_assertion(), options={"verify_signature": False})["jti"]
        for _ in range(3)
    }
    assert len(ids) == 3


@responses.activate
def test_token_is_cached_until_shortly_before_expiry() -> None:
    clock = Clock()
    responses.post(TOKEN_URL, json={"access_token": "t1", "expires_in": 300})
    responses.post(TOKEN_URL, json={"access_token": "t2", "expires_in": 300})
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = FhirClient(BASE, auth=smart(ec.generate_private_key(ec.SECP384R1()), clock))
    client.read("Patient", "p1")
    clock.now += 200
    client.read("Patient", "p1")
    assert len(token_calls()) == 1
    clock.now += 80  # 280 s: inside the renewal margin
    client.read("Patient", "p1")
    assert len(token_calls()) == 2
    auths = [
        c.request.headers["Authorization"] for c in responses.calls if "Patient" in c.request.url
    ]
    assert auths == ["Bearer t1", "Bearer t1", "Bearer t2"]


@responses.activate
def test_a_401_refreshes_the_token_once() -> None:
    responses.post(TOKEN_URL, json={"access_token": "old", "expires_in": 3600})
    responses.post(TOKEN_URL, json={"access_token": "new", "expires_in": 3600})
    responses.get(f"{BASE}/Patient/p1", status=401)
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = FhirClient(BASE, auth=smart(ec.generate_private_key(ec.SECP384R1())))
    assert client.read("Patient", "p1")["id"] == "p1"
    assert len(token_calls()) == 2
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer new"


@responses.activate
def test_a_second_401_is_an_auth_error_not_a_loop() -> None:
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 3600})
    responses.get(f"{BASE}/Patient/p1", status=401)
    client = FhirClient(BASE, auth=smart(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(EhrAuthError):
        client.read("Patient", "p1")
    assert len(token_calls()) == 2 and len(responses.calls) == 4


@responses.activate
def test_token_endpoint_refusal_and_outage() -> None:
    auth = smart(ec.generate_private_key(ec.SECP384R1()))
    responses.post(
        TOKEN_URL,
        status=401,
        json={"error": "invalid_client", "error_description": "unknown client"},
    )
    with pytest.raises(EhrAuthError, match="unknown client"):
        auth.authorization()
    responses.replace(responses.POST, TOKEN_URL, status=503)
    with pytest.raises(EhrUnavailable):
        auth.authorization()


def test_unsupported_key_type_is_refused() -> None:
    with pytest.raises(EhrAuthError, match="RS384"):
        smart(ec.generate_private_key(ec.SECP256R1()))


@responses.activate
def test_from_settings_discovers_the_token_endpoint(tmp_path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    responses.get(f"{BASE}/.well-known/smart-configuration", json={"token_endpoint": TOKEN_URL})
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 3600})
    responses.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    settings = Settings.from_env(
        {
            "REFERRAL_EHR_BASE_URL": BASE,
            "REFERRAL_EHR_AUTH": "smart-backend",
            "REFERRAL_EHR_CLIENT_ID": "svc",
            "REFERRAL_EHR_KEY_ID": "k1",
            "REFERRAL_EHR_PRIVATE_KEY_FILE": str(key_file),
        }
    )
    FhirClient.from_settings(settings).capabilities()
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer t"


def test_from_settings_reports_missing_smart_settings() -> None:
    settings = Settings.from_env(
        {"REFERRAL_EHR_BASE_URL": BASE, "REFERRAL_EHR_AUTH": "smart-backend"}
    )
    with pytest.raises(EhrAuthError, match="REFERRAL_EHR_CLIENT_ID"):
        FhirClient.from_settings(settings)
