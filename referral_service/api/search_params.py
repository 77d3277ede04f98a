"""FHIR search parameters common to every search: _count, _offset, dates with prefixes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request

from referral_service.fhir.outcome import Unreadable
from referral_service.fhir.referral import parse_datetime

DEFAULT_COUNT = 20
MAX_COUNT = 100
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")


def page_args() -> tuple[int, int]:
    return (
        min(_non_negative("_count", DEFAULT_COUNT), MAX_COUNT),
        _non_negative("_offset", 0),
    )


def _non_negative(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise Unreadable.single("value", f"{name} must be a non-negative integer", name)
    return int(raw)


def date_filters(name: str) -> list[tuple[str, datetime]]:
    filters = []
    for raw in request.args.getlist(name):
        prefix, text = (raw[:2], raw[2:]) if raw[:2] in PREFIXES else ("eq", raw)
        moment = parse_datetime(text)
        if moment is None:
            raise Unreadable.single("value", f"{name} must be a FHIR date or dateTime", name)
        filters.append((prefix, moment))
    return filters


def token_list(name: str) -> list[str] | None:
    values = [v for raw in request.args.getlist(name) for v in raw.split(",") if v]
    return values or None


def searchset(resources: list[dict[str, Any]], total: int, count: int, offset: int) -> dict:
    base = request.base_url
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("_offset",)]
    links = [{"relation": "self", "url": request.url}]
    if offset + count < total:
        params = "&".join(f"{k}={v}" for k, v in query + [("_offset", str(offset + count))])
        links.append({"relation": "next", "url": f"{base}?{params}"})
    root = request.url_root.rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{root}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
