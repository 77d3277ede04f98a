"""CDS Hooks requests shaped like the specification's examples (order-sign, order-select):
a draft ServiceRequest in `context.draftOrders` and the prefetched chart."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.referrals import ICD10, METRICS

PATIENT_ID = "cds-patient-1"
FHIR_SERVER = "https://ehr.example.org/fhir"


def draft_order(code: str = "G43.709", order_id: str = "draft-1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "priority": "routine",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"text": "Outpatient headache infusion"},
        "reasonCode": [{"coding": [{"system": ICD10, "code": code}]}],
        **extra,
    }


def observation(code: str, value: int, ident: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": METRICS, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectivePeriod": {"start": "2026-07-01", "end": "2026-11-20"},
        "valueInteger": value,
    }


def not_pregnant() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "preg",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": "2026-11-22T09:00:00Z",
        "valueCodeableConcept": {
            "coding": [{"system": "http://snomed.info/sct", "code": "60001007"}]
        },
    }


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "birthDate": "1980-04-02",
        "gender": "female",
    }


def chart_observations() -> list[dict[str, Any]]:
    return [
        observation("headache-days-per-month", 20, "hd"),
        observation("migraine-days-per-month", 12, "md"),
        not_pregnant(),
    ]


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"{FHIR_SERVER}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def full_prefetch(conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "patient": patient(),
        "conditions": searchset(conditions or []),
        "observations": searchset(chart_observations()),
        "medications": searchset([]),
    }


def hook_request(
    orders: list[dict[str, Any]],
    *,
    hook: str = "order-sign",
    prefetch: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The spec's order-sign example: hookInstance, fhirServer, context and prefetch."""
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": hook,
        "fhirServer": FHIR_SERVER,
        "context": {
            "userId": "PractitionerRole/A2340113",
            "patientId": PATIENT_ID,
            "encounterId": "89284",
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": o} for o in orders],
            },
        },
        "prefetch": full_prefetch() if prefetch is None else prefetch,
        **extra,
    }
