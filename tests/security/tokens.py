"""Test keys and tokens for the auth tests: made with cryptography at test time, never stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://auth.er.example.org"
AUDIENCE = "https://referrals.clinic.example.org/fhir"
REFERRER_SCOPES = (
    "system/ServiceRequest.cu system/ServiceRequest.rs system/Task.rs system/Appointment.rs"
)
STAFF_SCOPES = "system/referral-service.staff"


@dataclass(frozen=True)
class KeyPair:
    private: Any
    kid: str
    algorithm: str

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.get_default_algorithms()[self.algorithm]
        key = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**key, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def rsa_pair(kid: str = "rsa-1") -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid, "RS384")


def ec_pair(kid: str = "ec-1") -> KeyPair:
    return KeyPair(ec.generate_private_key(ec.SECP256R1()), kid, "ES256")


def claims(client: str = "er-north", scope: str = REFERRER_SCOPES, **overrides: Any) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client,
        "client_id": client,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": f"{client}-{now}",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def sign(pair: KeyPair, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, pair.private, algorithm=pair.algorithm, headers={"kid": pair.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    """`alg: none`: a token anyone can write."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def hs256_with_public_key(pair: KeyPair, payload: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC keyed with the server's published public key."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": pair.kid}).encode())
    body = _b64(json.dumps(payload).encode())
    mac = hmac.new(pair.public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
