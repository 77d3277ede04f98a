"""ETag / If-Match and Retry-After helpers for FHIR over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from .errors import EhrDataError

Resource = dict[str, Any]


def version_of(resource: Resource) -> str | None:
    return (resource.get("meta") or {}).get("versionId")


def etag(resource: Resource) -> str:
    """The If-Match value for a resource as last read (FHIR weak ETag)."""
    version = version_of(resource)
    if version is None:
        raise EhrDataError(f"{resource.get('resourceType')}/{resource.get('id')} has no versionId")
    return f'W/"{version}"'


def version_from_etag(value: str | None) -> str | None:
    if not value:
        return None
    return value.removeprefix("W/").strip('"') or None


def retry_after_seconds(response: requests.Response, now: datetime | None = None) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    if raw.strip().isdigit():
        return float(raw.strip())
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
