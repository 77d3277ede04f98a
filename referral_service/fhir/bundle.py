"""Transaction and batch Bundles on the FHIR edge: entry checks, `urn:uuid:` resolution."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from referral_service.fhir import resource_types
from referral_service.fhir.outcome import Issue, Unprocessable

SUPPORTING_TYPES = frozenset(resource_types.SUPPORTING_TYPES + resource_types.IN_BUNDLES_ONLY)


@dataclass
class BundleEntry:
    index: int
    method: str
    url: str
    resource: dict[str, Any]
    full_url: str = ""
    assigned_id: str | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def resource_type(self) -> str:
        return str(self.resource.get("resourceType"))


def read_entries(bundle: dict[str, Any]) -> tuple[str, list[BundleEntry]]:
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise Unprocessable.single(
            "invalid", "POST /fhir takes a transaction or batch Bundle", "Bundle.type"
        )
    raw_entries = bundle.get("entry")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise Unprocessable.single("required", "the Bundle has no entries", "Bundle.entry")
    entries = [_entry(index, raw) for index, raw in enumerate(raw_entries)]
    if kind == "transaction":
        issues = [issue for entry in entries for issue in entry.issues]
        if issues:
            raise Unprocessable(*issues)
    return kind, entries


def _entry(index: int, raw: Any) -> BundleEntry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("resource"), dict):
        return BundleEntry(
            index,
            "",
            "",
            {},
            issues=[Issue("required", f"{where}.resource is required", (f"{where}.resource",))],
        )
    request: dict[str, Any] = raw["request"] if isinstance(raw.get("request"), dict) else {}
    entry = BundleEntry(
        index,
        str(request.get("method", "")).upper(),
        str(request.get("url", "")),
        raw["resource"],
        full_url=str(raw.get("fullUrl") or ""),
    )
    entry.issues = _entry_issues(entry, where)
    return entry


def _entry_issues(entry: BundleEntry, where: str) -> list[Issue]:
    allowed = SUPPORTING_TYPES | {"ServiceRequest", "Task"}
    if entry.resource_type not in allowed:
        return [
            Issue(
                "not-supported",
                f"{where}: {entry.resource_type} is not accepted here",
                (f"{where}.resource.resourceType",),
            )
        ]
    if entry.method not in ("POST", "PUT"):
        return [
            Issue(
                "not-supported",
                f"{where}.request.method must be POST or PUT",
                (f"{where}.request.method",),
            )
        ]
    if entry.resource_type == "Task" and entry.method != "POST":
        return [
            Issue(
                "not-supported",
                f"{where}: a Task is the placer's own, sent with POST (PUT /fhir/Task/{{id}} "
                "changes the referral's Task)",
                (f"{where}.request.method",),
            )
        ]
    if entry.method == "PUT" and entry.resource_type != "ServiceRequest":
        return [
            Issue(
                "not-supported",
                f"{where}: only ServiceRequest may be updated here",
                (f"{where}.request.method",),
            )
        ]
    return []


def assign_ids(entries: list[BundleEntry], sender: str) -> dict[str, str]:
    """Give each created supporting resource its id; map every way the Bundle names it
    (fullUrl, `Type/oldid`) to `Type/newid`. The id is derived from the sender, fullUrl and
    content, so the same Bundle sent twice names the same resources (and stays idempotent)."""
    mapping: dict[str, str] = {}
    for entry in entries:
        if entry.issues or entry.resource_type in ("ServiceRequest", "Task"):
            continue  # a referral's id is its own; the placer's Task becomes the referral's
        content = json.dumps(entry.resource, sort_keys=True)
        entry.assigned_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{sender}|{entry.full_url}|{content}")
        )
        new_ref = f"{entry.resource_type}/{entry.assigned_id}"
        if entry.full_url:
            mapping[entry.full_url] = new_ref
        if entry.resource.get("id"):
            mapping[f"{entry.resource_type}/{entry.resource['id']}"] = new_ref
    return mapping


def rewrite_references(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        rewritten = {k: rewrite_references(v, mapping) for k, v in value.items()}
        ref = rewritten.get("reference")
        if isinstance(ref, str) and ref in mapping:
            rewritten["reference"] = mapping[ref]
        return rewritten
    if isinstance(value, list):
        return [rewrite_references(item, mapping) for item in value]
    return value


def prefix_issues(issues: list[Issue] | tuple[Issue, ...], index: int) -> list[Issue]:
    where = f"Bundle.entry[{index}].resource"
    return [
        Issue(
            i.code,
            f"Bundle.entry[{index}]: {i.diagnostics}",
            tuple(e.replace(e.split(".")[0], where, 1) for e in i.expression),
            i.severity,
        )
        for i in issues
    ]
