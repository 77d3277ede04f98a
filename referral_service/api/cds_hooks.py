"""CDS Hooks over HTTP: `GET /cds-services` (discovery),
`POST /cds-services/headache-infusion-referral[-select]` (order-sign, order-select) and
`POST /cds-services/{id}/feedback` (CDS Hooks 2.0 feedback on the cards).

The CDS client (the referring EHR) signs a JWT for each call (CDS Hooks 2.0, "Trusting CDS
Clients"): `iss` the client, `aud` the endpoint URL called, `exp`, `iat`, `jti`. It is verified
when REFERRAL_AUTH=jwt or when a CDS client key set is configured:

| variable | meaning |
|---|---|
| `REFERRAL_CDS_JWKS_URL` | JWKS URL of the CDS client's signing keys |
| `REFERRAL_CDS_JWKS_FILE` | the same JWKS as a local file (instead of the URL) |
| `REFERRAL_CDS_ISSUERS` | comma-separated `iss` values accepted (required when verifying) |

`aud` must be `REFERRAL_PUBLIC_URL` (else the request's own host URL) plus the path called.
A `jti` is accepted once per process until its token expires.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from flask import Blueprint, Response, current_app, jsonify, request

from referral_service.api.fhir_io import runtime
from referral_service.config import SettingsError
from referral_service.fhir.outcome import FhirError, Issue
from referral_service.fhir.validation import check_json_sizes
from referral_service.services.assessment import cds_ehr, cds_feedback, cds_hooks

cds_hooks_bp = Blueprint("cds_hooks", __name__)
log = logging.getLogger(__name__)
_UNCONFIGURED = object()

ALGORITHMS = ("RS384", "ES384", "RS256", "ES256", "ES512", "RS512")
LEEWAY_SECONDS = 30
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _refused(reason: str) -> FhirError:
    return FhirError(
        Issue("security", reason),
        status=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@dataclass
class CdsClientTrust:
    """Verifies CDS client JWTs against the client's key set."""

    issuers: frozenset[str]
    jwks_url: str | None = None
    jwks_file: str | None = None
    _jwks: jwt.PyJWKClient | None = None
    _seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls, env: dict[str, str], auth_mode: str) -> CdsClientTrust | None:
        url, path = env.get("REFERRAL_CDS_JWKS_URL"), env.get("REFERRAL_CDS_JWKS_FILE")
        if auth_mode != "jwt" and not (url or path):
            return None  # auth off and no CDS client configured: loopback trust, like the API
        issuers = frozenset(i.strip() for i in env.get("REFERRAL_CDS_ISSUERS", "").split(",") if i)
        if not (url or path) or not issuers:
            raise SettingsError(
                "CDS Hooks JWTs need REFERRAL_CDS_JWKS_URL (or _FILE) and REFERRAL_CDS_ISSUERS"
            )
        return cls(issuers, url or None, path or None)

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._key(token, header)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[_algorithm_for(key, header)],
                audience=[audience, audience.rstrip("/")],
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            raise _refused("the CDS client JWT is not valid") from None
        if claims["iss"] not in self.issuers:
            raise _refused("the CDS client is not trusted")
        self._once(str(claims["jti"]), float(claims["exp"]))
        return claims

    def _key(self, token: str, header: dict[str, Any]) -> jwt.PyJWK:
        if self.jwks_url:
            return self._client().get_signing_key_from_jwt(token)
        keys = jwt.PyJWKSet.from_dict(json.loads(Path(str(self.jwks_file)).read_text()))
        kid = header.get("kid")
        matching = [k for k in keys.keys if kid is None or k.key_id == kid]
        if not matching:
            raise jwt.InvalidKeyError("no key for this kid")
        return matching[0]

    def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:  # cached: keys are refetched only for an unknown kid
            self._jwks = jwt.PyJWKClient(str(self.jwks_url), lifespan=300, timeout=5)
        return self._jwks

    def _once(self, jti: str, expires: float) -> None:
        now = time.time()
        with self._lock:
            for old in [k for k, exp in self._seen.items() if exp + LEEWAY_SECONDS < now]:
                del self._seen[old]
            if jti in self._seen:
                raise _refused("this CDS client JWT was already used (jti)")
            self._seen[jti] = expires


def _algorithm_for(key: jwt.PyJWK, header: dict[str, Any]) -> str:
    """The token's algorithm, only if it is allowed and fits the key (never HMAC, never an
    RSA key read as an EC one): the key, not the token, decides how it is checked."""
    alg = str(header.get("alg"))
    declared = getattr(key, "_jwk_data", {}).get("alg")
    family = {"RSA": "RS", "EC": "ES"}.get(key.key_type or "")
    if alg not in ALGORITHMS or not family or not alg.startswith(family):
        raise jwt.InvalidAlgorithmError("algorithm not allowed for this key")
    if declared and declared != alg:
        raise jwt.InvalidAlgorithmError("the key is declared for another algorithm")
    return alg


def _trust() -> CdsClientTrust | None:
    extensions = current_app.extensions
    if "cds_hooks_trust" not in extensions:
        try:
            extensions["cds_hooks_trust"] = CdsClientTrust.from_env(
                dict(os.environ), runtime().settings.auth
            )
        except SettingsError as exc:
            # Auth is on but no CDS client is trusted: refuse every call, say why once.
            log.warning("CDS Hooks refused: %s", exc)
            extensions["cds_hooks_trust"] = _UNCONFIGURED
    trust = extensions["cds_hooks_trust"]
    if trust is _UNCONFIGURED:
        raise FhirError(
            Issue(
                "not-supported",
                "CDS Hooks is not configured on this server (no trusted CDS client key set)",
            ),
            status=503,
        )
    return trust


def _check_client() -> None:
    trust = _trust()
    if trust is None:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refused("a CDS client JWT is required")
    base = (runtime().settings.public_url or request.host_url).rstrip("/")
    trust.verify(token.strip(), f"{base}{request.path}")


@cds_hooks_bp.get("/cds-services")
def discovery() -> Response:
    _check_client()
    return jsonify(cds_hooks.discovery())


@cds_hooks_bp.post("/cds-services/<service_id>")
def hook_call(service_id: str) -> Response:
    _check_client()
    hook = _service_hook(service_id)
    body = _read_body()
    call = _read_call(body, service_id, hook)
    settings = runtime().settings
    access, why_not = cds_ehr.ehr_access(
        _fhir_server(body), body.get("fhirAuthorization"), settings.cds_fhir_server_allowlist
    )
    source = cds_hooks.ChartSource(access, why_not, settings.cds_ehr_budget_seconds)
    return jsonify(cds_hooks.answer(call, runtime=runtime(), source=source))


@cds_hooks_bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """CDS Hooks 2.0 feedback: the cards a clinician accepted or overrode."""
    _check_client()
    _service_hook(service_id)
    items = cds_feedback.read_feedback(_read_body())
    cds_feedback.record_feedback(runtime(), service_id, items, now=runtime().now())
    return Response(status=200)


def _service_hook(service_id: str) -> str:
    hook = cds_hooks.HOOK_OF_SERVICE.get(service_id)
    if hook is None:
        raise FhirError(Issue("not-found", "no such CDS service"), status=404)
    return hook


def _read_body() -> dict[str, Any]:
    """The hook call as JSON, with the same size and nesting limits as FHIR bodies."""
    raw = request.get_data()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid("body", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid("body", "the body must be a JSON object (a CDS Hooks request)")
    check_json_sizes(body)
    return body


def _read_call(body: dict[str, Any], service_id: str, hook: str) -> cds_hooks.HookCall:
    if body.get("hook") not in cds_hooks.HOOKS:
        raise _invalid("hook", f"hook must be one of {', '.join(cds_hooks.HOOKS)}")
    if body["hook"] != hook:
        raise _invalid(
            "hook", f"CDS service {service_id} answers the {hook} hook, not {body['hook']}"
        )
    instance = body.get("hookInstance")
    if not isinstance(instance, str) or not instance.strip():
        raise _invalid("hookInstance", "hookInstance (a UUID string) is required")
    context = body.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("patientId"), str):
        raise _invalid("context.patientId", "context.patientId is required")
    if not FHIR_ID.fullmatch(context["patientId"]):
        raise _invalid("context.patientId", "context.patientId must be a FHIR id")
    orders = context.get("draftOrders")
    if not isinstance(orders, dict) or orders.get("resourceType") != "Bundle":
        raise _invalid("context.draftOrders", "context.draftOrders must be a Bundle")
    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, dict):
        raise _invalid("prefetch", "prefetch must be an object")
    orders = cds_hooks.draft_referrals(context, hook)
    return cds_hooks.HookCall(hook, context["patientId"], orders, prefetch, instance, service_id)


def _fhir_server(body: dict[str, Any]) -> str | None:
    """The caller's FHIR server base URL, checked for shape (whether we read it is the
    allow-list's call, in services.cds_ehr)."""
    server, grant = body.get("fhirServer"), body.get("fhirAuthorization")
    if grant is not None and (not isinstance(grant, dict) or not server):
        raise _invalid("fhirAuthorization", "fhirAuthorization needs fhirServer and an object")
    if not server:
        return None
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise _invalid("fhirServer", "fhirServer must be an http(s) URL")
    return server


def _invalid(where: str, text: str) -> FhirError:
    return FhirError(Issue("invalid", text, (where,)), status=400)
