"""Hostile bodies, each small enough to pass the body-size check yet built to cost the parser or
validator dearly; shared by the hostile-size tests and bench/hostile_input.py."""

from __future__ import annotations

import json

MIB = 1024 * 1024


def nested(levels: int) -> bytes:
    return b'{"resourceType":"ServiceRequest","extension":' + b"[" * levels + b"]" * levels + b"}"


def bundle_of(entries: int) -> bytes:
    entry = {
        "resource": {"resourceType": "Patient"},
        "request": {"method": "POST", "url": "Patient"},
    }
    return json.dumps(
        {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * entries}
    ).encode()


def huge_string(chars: int = int(1.5 * MIB)) -> bytes:
    return json.dumps({"resourceType": "ServiceRequest", "note": [{"text": "a" * chars}]}).encode()


def huge_array(items: int = 800_000) -> bytes:
    return b'{"resourceType":"ServiceRequest","identifier":[' + b",".join([b"0"] * items) + b"]}"


def many_keys(keys: int = 120_000) -> bytes:
    return json.dumps(
        {"resourceType": "ServiceRequest", **{f"k{i}": 0 for i in range(keys)}}
    ).encode()


def many_small_objects(objects: int = 150_000) -> bytes:
    chunk = [{"a": 0}] * 900
    groups = [{"resourceType": "Observation", "component": chunk} for _ in range(objects // 900)]
    body = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": g} for g in groups]}
    return json.dumps(body).encode()


def over_the_size_limit(limit: int = 2 * MIB) -> bytes:
    return huge_string(limit + 1024)


HOSTILE: dict[str, bytes] = {}


def hostile_bodies() -> dict[str, bytes]:
    """Name -> body, built once (some take a moment to make)."""
    if not HOSTILE:
        HOSTILE.update(
            {
                "nesting 200 levels": nested(200),
                "nesting 500,000 levels": nested(500_000),
                "Bundle of 10,000 entries": bundle_of(10_000),
                "1.5 MiB string": huge_string(),
                "array of 800,000 items": huge_array(),
                "object of 120,000 keys": many_keys(),
                "150,000 small objects": many_small_objects(),
                "over the 2 MiB body limit": over_the_size_limit(),
            }
        )
    return HOSTILE
