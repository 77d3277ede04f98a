"""GET /fhir/metadata: a CapabilityStatement that tells the truth about what is supported."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from referral_service import __version__
from referral_service.api.fhir_io import check_accept, fhir_response, runtime

capability_bp = Blueprint("fhir_capability", __name__)

_COMMON_SEARCH = [{"name": "_count", "type": "number"}, {"name": "_offset", "type": "number"}]


def _resource(
    kind: str, interactions: list[str], params: list[tuple[str, str]], **extra: Any
) -> dict[str, Any]:
    return {
        "type": kind,
        "interaction": [{"code": code} for code in interactions],
        "searchParam": [{"name": n, "type": t} for n, t in params] + _COMMON_SEARCH,
        **extra,
    }


def capability_statement() -> dict[str, Any]:
    resources = [
        _resource(
            "ServiceRequest",
            ["create", "update", "read", "vread", "search-type"],
            [
                ("identifier", "token"),
                ("patient", "reference"),
                ("subject", "reference"),
                ("status", "token"),
                ("_lastUpdated", "date"),
            ],
            versioning="versioned-update",
            readHistory=False,
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
            [
                ("_id", "token"),
                ("focus", "reference"),
                ("based-on", "reference"),
                ("status", "token"),
            ],
        ),
        _resource("Appointment", ["read", "search-type"], [("based-on", "reference")]),
    ]
    for extension in current_app.config.get("CAPABILITY_EXTENSIONS", []):
        extension(resources)
    return {
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
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": current_app.config.get(
                    "CAPABILITY_SECURITY",
                    {"description": "No authentication: loopback only (REFERRAL_AUTH=none)"},
                ),
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }


@capability_bp.get("/fhir/metadata")
def metadata() -> Response:
    check_accept()
    return fhir_response(capability_statement())
