"""The `history` Bundle of one resource (http.html#history): each version with the
interaction that made it, newest first."""

from __future__ import annotations

from typing import Any


def history_bundle(versions: list[dict[str, Any]], base: str, path: str) -> dict[str, Any]:
    """`versions` are rendered resources (id and meta.versionId, meta.lastUpdated set);
    `path` is the history's own, as `ServiceRequest/x/_history`."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(versions),
        "link": [{"relation": "self", "url": f"{base}/fhir/{path}"}],
    }
    if versions:
        bundle["entry"] = [_entry(version, base) for version in versions]
    return bundle


def _entry(resource: dict[str, Any], base: str) -> dict[str, Any]:
    kind, resource_id = resource["resourceType"], resource["id"]
    version = resource["meta"]["versionId"]
    first = version == "1"
    return {
        "fullUrl": f"{base}/fhir/{kind}/{resource_id}",
        "resource": resource,
        "request": {
            "method": "POST" if first else "PUT",
            "url": kind if first else f"{kind}/{resource_id}",
        },
        "response": {
            "status": "201 Created" if first else "200 OK",
            "etag": f'W/"{version}"',
            "lastModified": resource["meta"]["lastUpdated"],
        },
    }
