"""FHIR over HTTP: reading request bodies, negotiating formats, shaping responses."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request

from referral_service.fhir.outcome import NotAcceptable, TooLarge, information_outcome
from referral_service.fhir.validation import check_content_type, decode_json_object

FHIR_JSON = "application/fhir+json"
_ACCEPTABLE = (
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
    "*/*",
    "application/*",
)


def runtime() -> Any:
    return current_app.extensions["referral_service"]


def public_base() -> str:
    """The service's base URL for absolute links: REFERRAL_PUBLIC_URL when set (it must be,
    behind a proxy that rewrites Host), else the URL this request reached."""
    configured = runtime().settings.public_url
    return str(configured or request.url_root).rstrip("/")


def read_resource() -> dict[str, Any]:
    limit = runtime().settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge.single("too-costly", f"the body is over the {limit}-byte limit")
    check_content_type(request.headers.get("Content-Type"))
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise TooLarge.single("too-costly", f"the body is over the {limit}-byte limit")
    return decode_json_object(body)


def check_accept() -> None:
    wanted = request.args.get("_format")
    if wanted and not any(kind in wanted for kind in ("json", "fhir+json")):
        raise NotAcceptable.single("not-supported", "only JSON is served (_format=json)")
    accept = request.headers.get("Accept")
    if not accept:
        return
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if not any(kind in _ACCEPTABLE for kind in kinds):
        raise NotAcceptable.single("not-supported", "only application/fhir+json is served")


def fhir_response(
    body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    payload = "" if body is None else json.dumps(body, separators=(",", ":"))
    response = Response(payload, status=status, mimetype=FHIR_JSON)
    response.headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def prefer_return() -> str:
    for part in request.headers.get("Prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip() == "return":
            return value.strip().strip('"')
    return "representation"


def written_response(resource: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    """A create/update answer shaped by `Prefer: return=minimal|representation|OperationOutcome`."""
    preference = prefer_return()
    if preference == "minimal":
        return fhir_response(None, status, headers)
    if preference == "OperationOutcome":
        text = "created" if status == 201 else "accepted"
        return fhir_response(
            information_outcome(f"{resource['resourceType']} {text}"), status, headers
        )
    return fhir_response(resource, status, headers)


def etag(version_id: int) -> str:
    return f'W/"{version_id}"'


def parse_if_match(header: str | None) -> int | None:
    if not header:
        return None
    text = header.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    try:
        return int(text)
    except ValueError:
        from referral_service.fhir.outcome import PreconditionFailed

        raise PreconditionFailed.single(
            "invalid", 'If-Match must be a version ETag such as W/"1"', "If-Match"
        ) from None
