"""FHIR endpoints for the supporting resources a referrer pushes one by one (BSeR REST push):
create, conditional create, update, read and search, each scoped to the sending system."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from referral_service.api.fhir_io import (
    check_accept,
    etag,
    fhir_response,
    parse_if_match,
    public_base,
    read_resource,
    runtime,
    written_response,
)
from referral_service.api.identity import current_sender, scope_sender
from referral_service.api.search_params import read_search, search_bundle
from referral_service.fhir import search_parameters
from referral_service.fhir.outcome import NotFound, Unreadable
from referral_service.fhir.referral import require_identifier_query
from referral_service.fhir.search import SearchParameter
from referral_service.services.intake import resources
from referral_service.services.intake.resources import PATIENT_ELEMENT, PUSHED_TYPES

resources_bp = Blueprint("fhir_resources", __name__)

# Only the pushed types: ServiceRequest, Task and Appointment keep their own endpoints.
_TYPE = f"<any({', '.join(PUSHED_TYPES)}):resource_type>"


def push() -> resources.Push:
    return resources.Push(current_sender(), runtime().now())


def _written(written: resources.Written, status: int) -> Response:
    stored = written.stored
    root = public_base()
    path = f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
    headers = {"Location": f"{root}/fhir/{path}", "ETag": etag(stored.version_id)}
    return written_response(resources.render(stored), status, headers)


def _wanted_identifier() -> tuple[str, str] | None:
    header = request.headers.get("If-None-Exist")
    if not header:
        return None
    name, _, value = header.partition("=")
    if name.strip() != "identifier":
        raise Unreadable.single(
            "not-supported", "If-None-Exist supports identifier=system|value", "If-None-Exist"
        )
    return require_identifier_query(value.strip())


@resources_bp.post(f"/fhir/{_TYPE}")
def create_resource(resource_type: str) -> Response:
    check_accept()
    document = read_resource()
    written = resources.create(runtime(), push(), resource_type, document, _wanted_identifier())
    return _written(written, 201 if written.created else 200)


@resources_bp.put(f"/fhir/{_TYPE}/<resource_id>")
def update_resource(resource_type: str, resource_id: str) -> Response:
    check_accept()
    document = read_resource()
    if_match = parse_if_match(request.headers.get("If-Match"))
    written = resources.update(runtime(), push(), resource_type, resource_id, document, if_match)
    return _written(written, 200)


@resources_bp.get(f"/fhir/{_TYPE}/<resource_id>")
def read_stored(resource_type: str, resource_id: str) -> Response:
    check_accept()
    resource = resources.read(runtime(), scope_sender(), resource_type, resource_id)
    version = int(resource["meta"]["versionId"])
    return fhir_response(
        resource, 200, {"ETag": etag(version), "Last-Modified": resource["meta"]["lastUpdated"]}
    )


@resources_bp.get(f"/fhir/{_TYPE}/<resource_id>/_history/<version_id>")
def read_stored_version(resource_type: str, resource_id: str, version_id: str) -> Response:
    """Only the current version is kept: an older one is "not found"."""
    check_accept()
    resource = resources.read(runtime(), scope_sender(), resource_type, resource_id)
    if version_id != resource["meta"]["versionId"]:
        raise NotFound.single(
            "not-found", f"{resource_type}/{resource_id} keeps only its current version"
        )
    return fhir_response(resource, 200, {"ETag": etag(int(version_id))})


@resources_bp.get(f"/fhir/{_TYPE}")
@resources_bp.post(f"/fhir/{_TYPE}/_search")
def search_stored(resource_type: str) -> Response:
    check_accept()
    criteria = read_search(parameters_of(resource_type))
    page = resources.search(runtime(), scope_sender(), resource_type, criteria, runtime().now())
    return fhir_response(search_bundle(resource_type, page.resources, page.total, criteria))


def _patient_parameters(resource_type: str) -> tuple[str, ...]:
    element = PATIENT_ELEMENT.get(resource_type)
    return ("patient", "subject") if element == "subject" else ("patient",) if element else ()


def parameters_of(resource_type: str) -> dict[str, SearchParameter]:
    return search_parameters.pushed(_patient_parameters(resource_type))


# --- the CapabilityStatement -------------------------------------------------------------------


def _advertise(entries: list[dict[str, Any]]) -> None:
    for resource_type in PUSHED_TYPES:
        entries.append(
            {
                "type": resource_type,
                "interaction": [
                    {"code": code} for code in ("create", "read", "update", "search-type")
                ],
                "searchParam": search_parameters.capability_params(parameters_of(resource_type)),
                "versioning": "versioned-update",
                "readHistory": False,
                "updateCreate": False,
                "conditionalCreate": True,
                "conditionalUpdate": False,
            }
        )


@resources_bp.record_once
def _register_capability(state: BlueprintSetupState) -> None:
    state.app.config.setdefault("CAPABILITY_EXTENSIONS", []).append(_advertise)
