"""Posting a notification Bundle to a referrer's rest-hook endpoint (Subscriptions Backport)."""

from __future__ import annotations

import json
from typing import Any

import requests


class NotDelivered(Exception):
    """The endpoint did not acknowledge (no 2xx): why, without the payload."""


def post_bundle(
    endpoint: str, bundle: dict[str, Any], *, headers: tuple[str, ...], timeout: float
) -> None:
    sent = {"Content-Type": "application/fhir+json"}
    for header in headers:
        name, _, value = header.partition(":")
        sent[name.strip()] = value.strip()
    try:
        response = requests.post(
            endpoint,
            data=json.dumps(bundle, separators=(",", ":")),
            headers=sent,
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise NotDelivered(type(exc).__name__) from exc
    if not 200 <= response.status_code < 300:
        raise NotDelivered(f"HTTP {response.status_code}")
