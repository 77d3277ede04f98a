"""FhirClient: the one door to the EHR. Timeouts, safe retries, and statuses -> typed errors."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
import requests

from referral_service.adapters.lease import check_held

from .auth import EhrAuth, NoAuth, RequestHook, auth_from_settings
from .errors import (
    EhrAuthError,
    EhrConflict,
    EhrDataError,
    EhrError,
    EhrNotFound,
    EhrRequestError,
    EhrUnavailable,
    outcome_text,
)
from .headers import Resource, retry_after_seconds, version_from_etag, version_of

if TYPE_CHECKING:
    from referral_service.config import Settings

FHIR_JSON = "application/fhir+json"
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def environment_session(base_url: str) -> requests.Session:
    """A Session with the proxy and CA bundle settings of the environment read once, here.

    requests' default (trust_env) re-reads os.environ and ~/.netrc on every request, about a
    millisecond a booking request; NO_PROXY, HTTP(S)_PROXY and REQUESTS_CA_BUNDLE still apply.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


class FhirClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth: EhrAuth | None = None,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        on_request: RequestHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth: EhrAuth = auth or NoAuth()
        self.session = session or requests.Session()
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._on_request: RequestHook | None = None
        if on_request is not None:
            self.on_request = on_request
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_request: RequestHook | None = None
    ) -> FhirClient:
        if not settings.ehr_base_url:
            raise ValueError("REFERRAL_EHR_BASE_URL is not set")
        session = environment_session(settings.ehr_base_url)
        timeout = (3.05, float(settings.ehr_timeout_seconds))
        return cls(
            settings.ehr_base_url,
            auth=auth_from_settings(settings, session, timeout, on_request),
            session=session,
            read_timeout=timeout[1],
            on_request=on_request,
        )

    @property
    def on_request(self) -> RequestHook | None:
        return self._on_request

    @on_request.setter
    def on_request(self, hook: RequestHook | None) -> None:
        """Latency hook for every request, token requests included (set it any time)."""
        self._on_request = hook
        if hasattr(self.auth, "on_request"):
            self.auth.on_request = hook

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- interactions -------------------------------------------------------------------

    def capabilities(self) -> Resource:
        return self._json(self._request("GET", f"{self.base_url}/metadata", "capabilities"))

    def read(self, resource_type: str, resource_id: str) -> Resource:
        url = f"{self.base_url}/{resource_type}/{resource_id}"
        return self._resource(self._request("GET", url, "read"))

    def search(
        self, resource_type: str, params: dict[str, Any] | None = None
    ) -> Iterator[Resource]:
        """Every match over all pages (following Bundle link[relation=next])."""
        url: str | None = f"{self.base_url}/{resource_type}"
        query = params
        while url:
            bundle = self._json(self._request("GET", url, "search", params=query))
            for entry in bundle.get("entry", []):
                if (entry.get("search") or {}).get(
                    "mode", "match"
                ) == "match" and "resource" in entry:
                    yield entry["resource"]
            url, query = self._next_page(bundle), None

    def matches(self, bundle: Resource) -> Iterator[Resource]:
        """Every match of a searchset already in hand (a batch entry's), then its next pages."""
        page: Resource | None = bundle
        while page is not None:
            for entry in page.get("entry", []):
                if (entry.get("search") or {}).get("mode", "match") == "match" and (
                    "resource" in entry
                ):
                    yield entry["resource"]
            url = self._next_page(page)
            page = self._json(self._request("GET", url, "search")) if url else None

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Resource:
        """POST; repeated on transient failure only when conditional (If-None-Exist)."""
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else {}
        url = f"{self.base_url}/{resource['resourceType']}"
        response = self._request(
            "POST", url, "create", body=resource, headers=headers, repeatable=bool(if_none_exist)
        )
        return self._written(response)

    def update(self, resource: Resource, *, if_match: str | None = None) -> Resource:
        """PUT; repeated on transient failure only with If-Match (a lost reply shows as 412)."""
        headers = {"If-Match": if_match} if if_match else {}
        url = f"{self.base_url}/{resource['resourceType']}/{resource['id']}"
        response = self._request(
            "PUT", url, "update", body=resource, headers=headers, repeatable=bool(if_match)
        )
        return self._written(response)

    def transaction(self, bundle: Resource, *, repeatable: bool = False) -> Resource:
        """POST a batch/transaction Bundle; `repeatable` only if every entry is conditional."""
        response = self._request(
            "POST", self.base_url, "transaction", body=bundle, repeatable=repeatable
        )
        return self._json(response)

    # -- the choke point ----------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        interaction: str,
        *,
        params: Any = None,
        body: Resource | None = None,
        headers: dict[str, str] | None = None,
        repeatable: bool | None = None,
    ) -> requests.Response:
        repeatable = method == "GET" if repeatable is None else repeatable
        data = orjson.dumps(body) if body is not None else None
        attempt, reauthorised = 0, False
        while True:
            try:
                response = self._send(method, url, interaction, params, data, headers)
            except TRANSIENT as exc:
                if not (repeatable and attempt < self.max_retries):
                    raise EhrUnavailable(
                        f"EHR unreachable ({interaction}): {type(exc).__name__}"
                    ) from exc
                self._sleep(self._backoff_delay(attempt))
                attempt += 1
                continue
            if response.status_code == 401 and not reauthorised and self.auth.invalidate():
                reauthorised = True  # a stale token: fetch a new one, once
                continue
            delay = self._retry_delay(response, attempt) if repeatable else None
            if delay is None:
                return self._check(response, interaction)
            self._sleep(delay)
            attempt += 1

    def _send(
        self,
        method: str,
        url: str,
        interaction: str,
        params: Any,
        data: bytes | None,
        extra: dict[str, str] | None,
    ) -> requests.Response:
        check_held()  # a job that lost its lease must not touch the EHR again
        headers = {"Accept": FHIR_JSON, **(extra or {})}
        if data is not None:
            headers["Content-Type"] = FHIR_JSON
            headers["Prefer"] = "return=representation"
        authorization = self.auth.authorization()
        if authorization:
            headers["Authorization"] = authorization
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, params=params, data=data, headers=headers, timeout=self.timeout
            )
        except requests.RequestException:
            self._record(interaction, 0, started)
            raise
        self._record(interaction, response.status_code, started)
        return response

    def _retry_delay(self, response: requests.Response, attempt: int) -> float | None:
        """Seconds to wait before repeating, or None when this answer is final."""
        if response.status_code != 429 and response.status_code < 500:
            return None
        if attempt >= self.max_retries:
            return None
        delay = retry_after_seconds(response)
        if delay is None:
            return self._backoff_delay(attempt)
        return delay if delay <= self.max_retry_after else None

    def _backoff_delay(self, attempt: int) -> float:
        # Exponential with "equal jitter": concurrent workers spread out, none retries at once.
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _check(self, response: requests.Response, interaction: str) -> requests.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        outcome = self._outcome(response)
        detail = outcome_text(outcome) or response.reason or ""
        message = f"EHR {interaction} failed with {status}: {detail}"
        kind: type[EhrError] = EhrRequestError
        if status in (401, 403):
            kind = EhrAuthError
        elif status in (404, 410):
            kind = EhrNotFound
        elif status in (409, 412):
            kind = EhrConflict
        elif status == 429 or status >= 500:
            raise EhrUnavailable(
                message, status=status, outcome=outcome, retry_after=retry_after_seconds(response)
            )
        raise kind(message, status=status, outcome=outcome)

    # -- bodies -------------------------------------------------------------------------

    @staticmethod
    def _decode(response: requests.Response) -> Any:
        # FHIR JSON is UTF-8; orjson reads the bytes as they came, several times faster than
        # the stdlib on the large Slot search pages a booking reads.
        return orjson.loads(response.content)

    @classmethod
    def _outcome(cls, response: requests.Response) -> Resource | None:
        try:
            body = cls._decode(response)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    @classmethod
    def _json(cls, response: requests.Response) -> Resource:
        try:
            body = cls._decode(response)
        except ValueError as exc:
            raise EhrDataError(f"EHR answered {response.status_code} without JSON") from exc
        if not isinstance(body, dict) or "resourceType" not in body:
            raise EhrDataError("EHR answered with something that is not a FHIR resource")
        return body

    def _resource(self, response: requests.Response) -> Resource:
        resource = self._json(response)
        version = version_from_etag(response.headers.get("ETag"))
        if version and not version_of(resource):
            resource.setdefault("meta", {})["versionId"] = version
        return resource

    def _written(self, response: requests.Response) -> Resource:
        if response.content.strip():
            return self._resource(response)
        # The server ignored Prefer: return=representation; read what it points to.
        location = response.headers.get("Location") or response.headers.get("Content-Location")
        if not location:
            raise EhrDataError("EHR wrote a resource but returned neither body nor Location")
        resource_type, resource_id = location.split("/_history/")[0].rstrip("/").split("/")[-2:]
        return self.read(resource_type, resource_id)

    def _next_page(self, bundle: Resource) -> str | None:
        for link in bundle.get("link", []):
            if link.get("relation") == "next" and link.get("url"):
                url: str = link["url"]
                if not url.startswith(self.base_url):
                    # Never send our credentials to a host the EHR merely names.
                    raise EhrDataError(f"next page link outside the EHR base URL: {url}")
                return url
        return None

    def _record(self, interaction: str, status: int, started: float) -> None:
        if self._on_request is not None:
            self._on_request(interaction, status, time.monotonic() - started)
