"""Request rate per client (flask-limiter): one budget per referring system across every endpoint,
kept in memory by default or in Redis (REFERRAL_RATE_LIMIT_STORAGE_URL) when several instances
must share it. Over budget: 429 with Retry-After, as an OperationOutcome `throttled`."""

from __future__ import annotations

from flask import Flask, g, request
from flask_limiter import Limiter

from referral_service.config import Settings

# Probes and scrapes come from the platform, often, and must never be throttled.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/fhir/metadata"})


def client_key() -> str:
    """The authenticated client (auth names it before the limiter runs), else the address."""
    sender = g.get("sender")
    return f"client:{sender}" if sender else f"addr:{request.remote_addr or 'unknown'}"


def init_limits(app: Flask, settings: Settings) -> Limiter:
    limiter = Limiter(
        client_key,
        app=app,
        application_limits=[settings.rate_limit],
        storage_uri=settings.rate_limit_storage_url,
        strategy="moving-window",
        headers_enabled=True,
        key_prefix="referral-service",
        # A Redis outage must not turn every request into a 500: limits go on per instance.
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    limiter.request_filter(lambda: request.path in UNLIMITED_PATHS)
    return limiter
