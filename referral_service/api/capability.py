"""GET /fhir/metadata: a CapabilityStatement that tells the truth about what is supported."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from referral_service import __version__
from referral_service.api.fhir_io import check_accept, fhir_response, runtime
from referral_service.fhir import search_parameters
from referral_service.fhir.search import SearchParameter
from referral_service.fhir.search_parameters import capability_params

capability_bp = Blueprint("fhir_capability", __name__)

SEARCH_DOCUMENTATION = (
    "Search by GET or by POST [type]/_search with a form-encoded body. Repeated parameters "
    "AND, comma lists OR; dates match the range their precision implies (a value without an "
    "offset is UTC). Lenient handling (the default) leaves unsupported parameters and "
    "modifiers out of the search and of the self link; Prefer: handling=strict refuses them "
    "with 400. Absolute URLs start with REFERRAL_PUBLIC_URL when set, else the request's."
)


def _resource(
    kind: str, interactions: list[str], params: dict[str, SearchParameter], **extra: Any
) -> dict[str, Any]:
    return {
        "type": kind,
        "interaction": [{"code": code} for code in interactions],
        "searchParam": capability_params(params),
        **extra,
    }


def capability_statement() -> dict[str, Any]:
    resources = [
        _resource(
            "ServiceRequest",
            ["create", "update", "read", "vread", "history-instance", "search-type"],
            search_parameters.SERVICE_REQUEST,
            versioning="versioned-update",
            readHistory=True,
            updateCreate=False,
            conditionalCreate=True,
            conditionalUpdate=False,
            operation=[
                {
                    "name": "evaluate",
                    "definition": "https://referral-service.dev/OperationDefinition/evaluate",
                }
            ],
        ),
        _resource(
            "Task",
            ["read", "search-type"],
            search_parameters.TASK,
        ),
        _resource("Appointment", ["read", "search-type"], search_parameters.APPOINTMENT),
    ]
    for extension in current_app.config.get("CAPABILITY_EXTENSIONS", []):
        extension(resources)
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "kind": "instance",
        "software": {"name": "referral-service", "version": __version__},
        "implementation": {
            # $evaluate decides under this policy; each Decision records the version too
            "description": "Headache infusion referral intake and booking; eligibility policy "
            + runtime().policy.version
        },
        **_instantiates(),
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": SEARCH_DOCUMENTATION,
                "security": current_app.config.get(
                    "CAPABILITY_SECURITY",
                    {"description": "No authentication: loopback only (REFERRAL_AUTH=none)"},
                ),
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
    # Whole-statement additions ($process-message and `messaging`, say) by their blueprints.
    for extend_statement in current_app.config.get("CAPABILITY_STATEMENT_EXTENSIONS", []):
        extend_statement(statement)
    return statement


def _instantiates() -> dict[str, Any]:
    """Capability statements this server conforms to (a blueprint adds its own)."""
    canonicals = current_app.config.get("CAPABILITY_INSTANTIATES", [])
    return {"instantiates": list(canonicals)} if canonicals else {}


@capability_bp.get("/fhir/metadata")
def metadata() -> Response:
    check_accept()
    return fhir_response(capability_statement())
