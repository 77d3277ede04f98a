"""Inbound FHIR JSON: media types, JSON decoding, structural validation with fhir.resources,
and the required bindings fhir.resources leaves unchecked."""

from __future__ import annotations

import json
from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class

from referral_service.fhir.control_characters import forbid_in_json
from referral_service.fhir.outcome import (
    Issue,
    TooLarge,
    Unprocessable,
    Unreadable,
    UnsupportedMediaType,
)

# Hostile-input bounds (docs/security.md). Real referrals nest ~15 levels, carry tens of Bundle
# entries and short strings; these leave wide room while keeping the parser's and validator's
# work bounded: deep nesting would reach Python's recursion limit, long arrays and strings make
# pydantic validation take seconds.
MAX_JSON_DEPTH = 64
MAX_JSON_ARRAY_ITEMS = 1000
MAX_JSON_STRING_CHARS = 65_536
MAX_JSON_VALUES = 100_000

JSON_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
XML_MEDIA_TYPES = frozenset({"application/fhir+xml", "application/xml", "text/xml"})

# Required bindings (FHIR R4 value sets) that the models accept as any string.
REQUIRED_BINDINGS: dict[str, dict[str, frozenset[str]]] = {
    "ServiceRequest": {
        "status": frozenset(
            {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
        ),
        "intent": frozenset(
            {
                "proposal",
                "plan",
                "directive",
                "order",
                "original-order",
                "reflex-order",
                "filler-order",
                "instance-order",
                "option",
            }
        ),
        "priority": frozenset({"routine", "urgent", "asap", "stat"}),
    },
    "Task": {
        "status": frozenset(
            {
                "draft",
                "requested",
                "received",
                "accepted",
                "rejected",
                "ready",
                "cancelled",
                "in-progress",
                "on-hold",
                "failed",
                "completed",
                "entered-in-error",
            }
        ),
        "intent": frozenset(
            {
                "unknown",
                "proposal",
                "plan",
                "order",
                "original-order",
                "reflex-order",
                "filler-order",
                "instance-order",
                "option",
            }
        ),
    },
}


# Cardinality 1..1 elements the models do not enforce.
REQUIRED_ELEMENTS: dict[str, tuple[str, ...]] = {
    "ServiceRequest": ("status", "intent", "subject"),
    "Task": ("status", "intent"),
    "Observation": ("status", "code"),
    "Condition": ("subject",),
    "MedicationStatement": ("status", "subject"),
}


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def check_content_type(header: str | None) -> None:
    kind = media_type(header)
    if kind in JSON_MEDIA_TYPES:
        return
    if kind in XML_MEDIA_TYPES:
        raise UnsupportedMediaType.single(
            "not-supported", "FHIR XML is not supported; send application/fhir+json"
        )
    raise UnsupportedMediaType.single(
        "not-supported",
        f"Content-Type {kind or '(none)'} is not supported; send application/fhir+json",
    )


def decode_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise Unreadable.single("required", "the request body is empty")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unreadable.single(
            "structure", f"the body is not valid JSON ({_json_error(exc)})"
        ) from None
    except RecursionError:  # the C parser's own bound, hit in microseconds by hostile nesting
        raise _too_costly(f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels") from None
    check_json_sizes(document)
    if not isinstance(document, dict):
        raise Unreadable.single("structure", "the body must be a JSON object (a FHIR resource)")
    if not isinstance(document.get("resourceType"), str):
        raise Unreadable.single("required", "resourceType is missing", "resourceType")
    return document


def _too_costly(diagnostics: str) -> TooLarge:
    return TooLarge(Issue("too-costly", diagnostics))


def check_json_sizes(document: Any) -> None:
    """Refuse deep nesting, over-long arrays (a Bundle's entries among them), long strings and
    too many values, in one pass over the parsed document that stops at the first excess; then
    control characters FHIR strings may not hold (every JSON body passes here)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    seen = 0
    while pending:
        value, depth = pending.pop()
        seen += 1
        if seen > MAX_JSON_VALUES:
            raise _too_costly(f"the body holds more than {MAX_JSON_VALUES} JSON values")
        if isinstance(value, dict | list) and depth > MAX_JSON_DEPTH:
            raise _too_costly(f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict | list):
            if len(value) > MAX_JSON_ARRAY_ITEMS:
                raise _too_costly(f"a JSON array or object has over {MAX_JSON_ARRAY_ITEMS} items")
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(value, str) and len(value) > MAX_JSON_STRING_CHARS:
            raise _too_costly(f"a JSON string is longer than {MAX_JSON_STRING_CHARS} characters")
    forbid_in_json(document)


def _json_error(exc: Exception) -> str:
    # json's messages name line/column only; they never echo the (possibly clinical) content.
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "not UTF-8 text"


def expect_resource_type(document: dict[str, Any], expected: str) -> None:
    actual = document.get("resourceType")
    if actual != expected:
        raise Unreadable.single(
            "invalid", f"expected a {expected} resource, got {actual!r}", "resourceType"
        )


def validate_resource(document: dict[str, Any]) -> list[Issue]:
    """Every structural and binding problem of one resource, as OperationOutcome issues."""
    resource_type = document["resourceType"]
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError):
        return [
            Issue("not-supported", f"unknown resourceType {resource_type!r}", ("resourceType",))
        ]
    issues = _structure_issues(model, resource_type, document) + _contained_issues(document)
    reported = {path for issue in issues for path in issue.expression}
    for issue in _required_issues(resource_type, document) + _binding_issues(
        resource_type, document
    ):
        if not reported.intersection(issue.expression):
            issues.append(issue)
    return issues


def _contained_issues(document: dict[str, Any]) -> list[Issue]:
    contained = document.get("contained")
    if not isinstance(contained, list):
        return []
    issues = []
    for index, item in enumerate(contained):
        path = f"{document['resourceType']}.contained[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("resourceType"), str):
            issues.append(Issue("value", f"{path} must be a resource with a resourceType", (path,)))
            continue
        # The container's model already validated the structure of what it contains; only the
        # checks the models skip (cardinality, required bindings) remain to be done.
        kind = item["resourceType"]
        for issue in _required_issues(kind, item) + _binding_issues(kind, item):
            issues.append(
                Issue(
                    issue.code,
                    f"{path}: {issue.diagnostics}",
                    tuple(e.replace(item["resourceType"], path, 1) for e in issue.expression),
                )
            )
    return issues


def _structure_issues(model: Any, resource_type: str, document: dict[str, Any]) -> list[Issue]:
    try:
        model.model_validate(document)
    except pydantic.ValidationError as exc:
        return [_structure_issue(resource_type, error) for error in exc.errors()]
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        return [Issue("structure", f"{resource_type} is malformed: {type(exc).__name__}")]
    return []


def _required_issues(resource_type: str, document: dict[str, Any]) -> list[Issue]:
    return [
        Issue("required", f"{resource_type}.{element} is required", (f"{resource_type}.{element}",))
        for element in REQUIRED_ELEMENTS.get(resource_type, ())
        if document.get(element) in (None, "", [], {})
    ]


def _structure_issue(resource_type: str, error: Any) -> Issue:
    path = fhirpath(resource_type, error.get("loc", ()))
    kind = error.get("type", "")
    if kind == "missing" or kind.endswith(".missing"):
        return Issue("required", f"{path} is required", (path,))
    if kind == "extra_forbidden":
        return Issue("structure", f"{path} is not a known element", (path,))
    # Pydantic messages describe the expected shape, never the submitted value.
    return Issue("value", f"{path}: {error.get('msg', 'invalid value')}", (path,))


def fhirpath(resource_type: str, location: tuple[Any, ...]) -> str:
    path = resource_type
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and not part.startswith("function-"):
            path += f".{part}"
    return path


def _binding_issues(resource_type: str, document: dict[str, Any]) -> list[Issue]:
    issues = []
    for element, allowed in REQUIRED_BINDINGS.get(resource_type, {}).items():
        value = document.get(element)
        if value is not None and (not isinstance(value, str) or value not in allowed):
            path = f"{resource_type}.{element}"
            issues.append(
                Issue(
                    "value",
                    f"{path} must be one of: {', '.join(sorted(allowed))}",
                    (path,),
                )
            )
    return issues


def require_valid(document: dict[str, Any]) -> None:
    issues = validate_resource(document)
    if issues:
        raise Unprocessable(*issues)


def subject_issues(service_request: dict[str, Any], patient_refs: set[str]) -> list[Issue]:
    """A referral must be about a Patient: `Patient/x`, a URL ending so, a contained or Bundle
    Patient."""
    subject = service_request.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not reference:
        return [
            Issue(
                "required",
                "ServiceRequest.subject must reference the Patient",
                ("ServiceRequest.subject",),
            )
        ]
    if isinstance(subject, dict) and _names_patient(reference, subject, patient_refs):
        return []
    return [
        Issue(
            "invalid",
            "ServiceRequest.subject must reference a Patient",
            ("ServiceRequest.subject.reference",),
        )
    ]


def _names_patient(reference: str, subject: dict[str, Any], patient_refs: set[str]) -> bool:
    if reference in patient_refs or subject.get("type") == "Patient":
        return True
    parts = reference.split("?")[0].rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return len(parts) >= 2 and parts[-2] == "Patient" and bool(parts[-1])
