"""An app with REFERRAL_AUTH=jwt (issue 6's bearer auth) and tokens its referrers and staff use."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from referral_service.api.app import create_app
from referral_service.config import Settings

AUDIENCE = "https://referrals.example.org"
ISSUER = "https://auth.example.org"
STAFF_SCOPE = "system/referral-service.staff"


def jwt_mode_app(database_url: str, workdir: Path) -> tuple[Any, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = workdir / "auth-server.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    settings = Settings(
        database_url=database_url,
        auth="jwt",
        jwt_public_key_file=str(public),
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )
    app = create_app(settings=settings)
    app.config["TESTING"] = True
    return app, key


def access_token(key: Any, client_id: str, scope: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "client_id": client_id,
        "scope": scope,
    }
    return jwt.encode(claims, key, algorithm="RS384")
