"""Limits on what one client may cost us. Request rate per client (flask-limiter): one budget
per referring system across every endpoint, kept in memory by default or in Redis
(REFERRAL_RATE_LIMIT_STORAGE_URL) when several instances must share it; over budget, 429 with
Retry-After as an OperationOutcome `throttled`. JSON read through Flask (the staff API,
webhooks) gets the same nesting and size bounds as FHIR bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from flask_limiter import Limiter
from werkzeug.exceptions import ClientDisconnected

from referral_service.api.fhir_io import fhir_response
from referral_service.api.limit_storage import storage_uri
from referral_service.config import Settings
from referral_service.fhir.outcome import Issue, TooLarge, Unreadable, operation_outcome
from referral_service.fhir.validation import MAX_JSON_DEPTH, check_json_sizes

# Paging deeper than this is a scan, not a search; bigger numbers overflow database integers.
MAX_PAGE_OFFSET = 1_000_000
_PAGING_PARAMETERS = ("_offset", "offset", "_count", "count")

# Probes and scrapes come from the platform, often, and must never be throttled.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/fhir/metadata"})


def client_key() -> str:
    """The authenticated client (auth names it before the limiter runs), else the address."""
    sender = g.get("sender")
    return f"client:{sender}" if sender else f"addr:{request.remote_addr or 'unknown'}"


class BoundedJSONProvider(DefaultJSONProvider):
    """`request.get_json()` (the staff API, webhooks) under the same bounds as FHIR bodies:
    hostile nesting would otherwise raise RecursionError from the parser, a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            document = super().loads(s, **kwargs)
        except RecursionError:
            message = f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels"
            raise TooLarge(Issue("too-costly", message)) from None
        check_json_sizes(document)
        return document


def check_paging() -> None:
    """Refuse paging numbers no real client sends, before any endpoint turns them into SQL."""
    for name in _PAGING_PARAMETERS:
        for raw in request.args.getlist(name):
            digits = raw.strip().lstrip("+")
            if digits.isdigit() and (len(digits) > 9 or int(digits) > MAX_PAGE_OFFSET):
                raise Unreadable.single("value", f"{name} must be at most {MAX_PAGE_OFFSET}", name)


def bound_body_reads(seconds: float) -> Callable[[], None]:
    """gunicorn's threaded workers read bodies from a blocking socket with no deadline, so a
    client trickling its body would hold a thread for ever; give the socket one."""

    def set_deadline() -> None:
        connection = request.environ.get("gunicorn.socket")
        if connection is not None and hasattr(connection, "settimeout"):
            # Cleared by gunicorn's setblocking() when the connection is reused or polled.
            connection.settimeout(seconds)

    return set_deadline


def body_too_slow(_exc: Exception) -> Response:
    """408 and close: the socket deadline fired (werkzeug reports it as a client disconnect)."""
    issue = Issue("timeout", "the request body did not arrive in time")
    response = fhir_response(operation_outcome([issue]), 408)
    response.headers["Connection"] = "close"
    return response


def init_limits(app: Flask, settings: Settings) -> Limiter:
    app.before_request(check_paging)
    app.before_request(bound_body_reads(settings.body_read_timeout_seconds))
    app.register_error_handler(TimeoutError, body_too_slow)
    app.register_error_handler(ClientDisconnected, body_too_slow)
    bounded = BoundedJSONProvider(app)
    bounded.__dict__.update(vars(app.json))  # keep any options already set on the provider
    app.json = bounded
    limiter = Limiter(
        client_key,
        app=app,
        application_limits=[settings.rate_limit],
        storage_uri=storage_uri(settings.rate_limit_storage_url),
        strategy="moving-window",
        headers_enabled=True,
        key_prefix="referral-service",
        # A Redis outage must not turn every request into a 500: limits go on per instance.
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    limiter.request_filter(lambda: request.path in UNLIMITED_PATHS)
    return limiter
