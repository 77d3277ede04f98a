"""How the client proves itself to the EHR: nothing, a static bearer token, or SMART Backend
Services (client_credentials grant with a signed JWT client assertion)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import EhrAuthError, EhrUnavailable

if TYPE_CHECKING:
    from referral_service.config import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_SCOPE = "system/*.read system/*.write"
ASSERTION_LIFETIME = 240  # seconds; SMART allows at most 300, keep a margin for clock skew
RequestHook = Callable[[str, int, float], None]


class EhrAuth(Protocol):
    def authorization(self) -> str | None:
        """The Authorization header value to send, or None."""

    def invalidate(self) -> bool:
        """Forget cached credentials after a 401; True when asking again may help."""


class NoAuth:
    def authorization(self) -> str | None:
        return None

    def invalidate(self) -> bool:
        return False


class BearerAuth:
    def __init__(self, token: str) -> None:
        self._token = token

    def authorization(self) -> str | None:
        return f"Bearer {self._token}"

    def invalidate(self) -> bool:
        return False  # a static token will not get better by asking again


def signing_algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS384"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return "ES384"
    raise EhrAuthError("SMART backend key must be RSA (RS384) or EC P-384 (ES384)")


def load_private_key(path: str) -> Any:
    try:
        return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise EhrAuthError(f"cannot load SMART private key {path}: {exc}") from exc


class SmartBackendAuth:
    """Access tokens from the EHR's token endpoint, cached until shortly before they expire."""

    def __init__(
        self,
        *,
        client_id: str,
        token_url: str | None,
        private_key: Any,
        key_id: str,
        scope: str = DEFAULT_SCOPE,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
        clock: Callable[[], float] = time.time,
        on_request: RequestHook | None = None,
        discovery_url: str | None = None,
    ) -> None:
        if not token_url and not discovery_url:
            raise EhrAuthError("SMART backend auth needs a token URL (or a discovery URL)")
        self.client_id = client_id
        self._discovery_url = discovery_url
        self.token_url = token_url
        self.key_id = key_id
        self.scope = scope
        self._key = private_key
        self._alg = signing_algorithm(private_key)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock
        self.on_request = on_request
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def authorization(self) -> str | None:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, lifetime = self._fetch_token()
                # Renew at 90% of the lifetime (at most a minute early) so no request goes
                # out with a token that expires in flight.
                self._refresh_at = self._clock() + lifetime - min(60.0, lifetime * 0.1)
            return f"Bearer {self._token}"

    def invalidate(self) -> bool:
        with self._lock:
            self._token = None
        return True

    def client_assertion(self) -> str:
        if not self.token_url:
            raise EhrAuthError("token URL not known yet")
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        headers = {"kid": self.key_id, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm=self._alg, headers=headers)

    def _fetch_token(self) -> tuple[str, float]:
        if not self.token_url:
            self.token_url = self._discover_token_url()
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(),
        }
        started = time.monotonic()
        try:
            response = self._session.post(
                self.token_url,
                data=form,
                timeout=self._timeout,
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            self._record(0, started)
            raise EhrUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from exc
        self._record(response.status_code, started)
        return self._read_token(response)

    def _discover_token_url(self) -> str:
        """From the EHR's .well-known/smart-configuration, at first use (not at startup)."""
        url = str(self._discovery_url)
        try:
            response = self._session.get(
                url, timeout=self._timeout, headers={"Accept": "application/json"}
            )
        except requests.RequestException as exc:
            raise EhrUnavailable(f"SMART discovery failed: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise EhrUnavailable(f"SMART discovery answered {response.status_code}")
        try:
            endpoint = response.json().get("token_endpoint") if response.ok else None
        except ValueError:
            endpoint = None
        if not endpoint:
            raise EhrAuthError("set REFERRAL_EHR_TOKEN_URL: the EHR publishes no token_endpoint")
        return str(endpoint)

    def _read_token(self, response: requests.Response) -> tuple[str, float]:
        if response.status_code == 429 or response.status_code >= 500:
            raise EhrUnavailable(
                f"token endpoint answered {response.status_code}", status=response.status_code
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not body.get("access_token"):
            detail = body.get("error_description") or body.get("error") or response.reason
            raise EhrAuthError(
                f"token request refused ({response.status_code}): {detail}",
                status=response.status_code,
            )
        return body["access_token"], float(body.get("expires_in") or 300)

    def _record(self, status: int, started: float) -> None:
        if self.on_request is not None:
            self.on_request("token", status, time.monotonic() - started)


def _require_smart_settings(settings: Settings) -> None:
    needed = {
        "REFERRAL_EHR_CLIENT_ID": settings.ehr_client_id,
        "REFERRAL_EHR_PRIVATE_KEY_FILE": settings.ehr_private_key_file,
        "REFERRAL_EHR_KEY_ID": settings.ehr_key_id,
    }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        raise EhrAuthError(f"REFERRAL_EHR_AUTH=smart-backend needs {', '.join(missing)}")


def auth_from_settings(
    settings: Settings,
    session: requests.Session,
    timeout: tuple[float, float],
    on_request: RequestHook | None = None,
) -> EhrAuth:
    if settings.ehr_auth == "bearer":
        if not settings.ehr_token:
            raise EhrAuthError("REFERRAL_EHR_AUTH=bearer needs REFERRAL_EHR_TOKEN")
        return BearerAuth(settings.ehr_token)
    if settings.ehr_auth != "smart-backend":
        return NoAuth()
    _require_smart_settings(settings)
    return SmartBackendAuth(
        client_id=str(settings.ehr_client_id),
        token_url=settings.ehr_token_url,
        discovery_url=f"{settings.ehr_base_url}/.well-known/smart-configuration",
        on_request=on_request,
        private_key=load_private_key(str(settings.ehr_private_key_file)),
        key_id=str(settings.ehr_key_id),
        session=session,
        timeout=timeout,
        scope=settings.extra.get("REFERRAL_EHR_SCOPE", DEFAULT_SCOPE),
    )
