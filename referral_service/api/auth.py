"""Inbound auth (REFERRAL_AUTH=jwt): bearer JWTs from referring systems, checked against a JWKS
URL or a public key, and the SMART v2 system scopes each endpoint needs (docs/security.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from flask import Flask, g, request

from referral_service.config import Settings, SettingsError
from referral_service.fhir.outcome import FhirError, Issue

log = logging.getLogger(__name__)

# Only asymmetric signatures: a referrer must never be able to mint tokens with what we publish,
# so `none` and HMAC (including HS256 keyed with our public key) are refused outright.
ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
CLOCK_SKEW_SECONDS = 30
JWKS_CACHE_SECONDS = 300
# At most one refetch per this many seconds, so tokens with made-up `kid`s cannot turn every
# request into a JWKS download.
JWKS_REFRESH_COOLDOWN_SECONDS = 10.0
STAFF_SCOPE = "system/referral-service.staff"
OPEN_PATHS = frozenset({"/fhir/metadata", "/healthz", "/readyz", "/metrics"})
SMART_SERVICE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
        }
    ],
    "text": "OAuth2 bearer JWT (SMART Backend Services, system scopes)",
}


class Unauthorized(FhirError):
    status = 401


class Forbidden(FhirError):
    status = 403


class AuthUnavailable(FhirError):
    status = 503


def unauthorized(reason: str) -> Unauthorized:
    header = f'Bearer error="invalid_token", error_description="{reason}"'
    return Unauthorized(Issue("security", reason), headers={"WWW-Authenticate": header})


@dataclass(frozen=True)
class Caller:
    client: str
    scopes: frozenset[str]


class TokenVerifier:
    """Checks signature, `iss`, `aud`, `exp`, `nbf`; keys from a JWKS URL (cached, refetched on
    an unknown `kid`) or from one PEM public key file."""

    def __init__(self, settings: Settings) -> None:
        if not settings.jwt_audience or not settings.jwt_issuer:
            raise SettingsError("REFERRAL_AUTH=jwt needs REFERRAL_JWT_AUDIENCE and _ISSUER")
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url,
                lifespan=JWKS_CACHE_SECONDS,
                timeout=5,
                cooldown_duration=JWKS_REFRESH_COOLDOWN_SECONDS,
            )
        elif settings.jwt_public_key_file:
            self._key = Path(settings.jwt_public_key_file).read_bytes()
        else:
            raise SettingsError(
                "REFERRAL_AUTH=jwt needs REFERRAL_JWKS_URL or REFERRAL_JWT_PUBLIC_KEY_FILE"
            )

    def caller(self, token: str) -> Caller:
        try:
            claims = self._decode(token)
        except jwt.PyJWKClientConnectionError:
            raise AuthUnavailable.single("transient", "the token keys cannot be fetched") from None
        except jwt.PyJWTError as exc:
            # The error class names the failed check; the token itself is never logged.
            log.info("token refused", extra={"reason": type(exc).__name__})
            raise unauthorized("the bearer token is not valid") from None
        client = claims.get("client_id") or claims.get("sub")
        if not isinstance(client, str) or not client:
            raise unauthorized("the token names no client (client_id or sub)")
        return Caller(client, frozenset(str(claims.get("scope", "")).split()))

    def _decode(self, token: str) -> dict[str, Any]:
        if jwt.get_unverified_header(token).get("alg") not in ALGORITHMS:
            raise jwt.InvalidAlgorithmError("algorithm not allowed")
        key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._key
        return jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=self.audience,
            issuer=self.issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iss", "aud"]},
        )


def grants(scopes: frozenset[str], resource_type: str, permission: str) -> bool:
    """SMART v2 (`system/Type.cruds` subsets) and v1 (`system/Type.read|write|*`) scopes."""
    for scope in scopes:
        context, _, rest = scope.partition("/")
        granted_type, _, granted = rest.partition(".")
        if context != "system" or granted_type not in (resource_type, "*"):
            continue
        if granted in ("*", "read" if permission in "rs" else "write"):
            return True
        if granted and set(granted) <= set("cruds") and permission in granted:
            return True
    return False


def required_permission(method: str, path: str) -> tuple[str, str] | None:
    """(resource type, SMART permission letter) a FHIR request needs; None for staff-only."""
    parts = [part for part in path.split("/") if part][1:]  # after "fhir"
    if not parts:
        return ("ServiceRequest", "c")  # POST /fhir: a transaction or batch Bundle of referrals
    resource_type = parts[0]
    if parts == ["$process-message"]:
        # A message creates a referral (or registers its Patient), as POST /fhir does.
        return ("ServiceRequest", "c")
    if resource_type == "AuditEvent":
        return None
    if method in ("GET", "HEAD"):
        return (resource_type, "r" if len(parts) > 1 else "s")
    if parts[1:] == ["_search"]:
        return (resource_type, "s")  # a search by POST reads, as its GET does
    if len(parts) > 1 and parts[1] == "$evaluate":
        return (resource_type, "c")
    if method == "DELETE":
        return (resource_type, "d")
    return (resource_type, "u" if method == "PUT" else "c")


def is_staff_path(path: str) -> bool:
    return path.startswith(("/api/", "/fhir/AuditEvent", "/console"))


def authorize(caller: Caller, method: str, path: str) -> None:
    if is_staff_path(path):
        if STAFF_SCOPE not in caller.scopes:
            raise Forbidden.single("forbidden", f"this endpoint needs the {STAFF_SCOPE} scope")
        return
    if path != "/fhir" and not path.startswith("/fhir/"):
        return  # no such endpoint: the 404 follows
    needed = required_permission(method, path)
    if needed is None or not grants(caller.scopes, *needed):
        scope = f"system/{needed[0]}.{needed[1]}" if needed else STAFF_SCOPE
        raise Forbidden.single("forbidden", f"this request needs the {scope} scope")


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("a bearer token is required")
    return token.strip()


def needs_token(path: str) -> bool:
    # Webhooks carry the EHR's shared secret (REFERRAL_WEBHOOK_SECRET) and CDS Hooks calls the
    # CDS client's own signed JWT; both are checked by their endpoints.
    # The referral form's web page carries its own signed link (services/form_links.py).
    return not (
        path in OPEN_PATHS or path.startswith(("/webhooks/", "/cds-services", "/referral-form/"))
    )


def init_auth(app: Flask, settings: Settings) -> None:
    if settings.auth != "jwt":
        return
    verifier = TokenVerifier(settings)
    app.config["CAPABILITY_SECURITY"] = {
        "cors": False,
        "service": [SMART_SERVICE],
        "description": f"Bearer JWT with SMART v2 system scopes; staff use {STAFF_SCOPE}",
    }

    @app.before_request
    def _authenticate() -> None:
        g.is_staff = False
        if not needs_token(request.path):
            return
        caller = verifier.caller(_bearer_token())
        g.sender = caller.client
        g.is_staff = STAFF_SCOPE in caller.scopes
        authorize(caller, request.method, request.path)
