"""Referral documents for tests, built from the parts the criteria care about."""

from __future__ import annotations

import copy
import uuid
from typing import Any

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
METRICS = "https://referral-service.dev/headache-metrics"
FHIR_JSON = "application/fhir+json"


def service_request(identifier: str | None = None, **overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [
            {"system": "https://er.example.org/referrals", "value": identifier or uuid.uuid4().hex}
        ],
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "subject": {"reference": "#patient"},
        "authoredOn": "2026-11-23T09:00:00Z",
        "reasonCode": [
            {
                "coding": [
                    {"system": ICD10, "code": "G43.709", "display": "Chronic migraine without aura"}
                ]
            }
        ],
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "name": [{"family": "Testperson", "given": ["Ada"]}],
                "birthDate": "1980-04-02",
                "gender": "female",
            }
        ],
    }
    resource.update(overrides)
    return resource


def metric(
    code: str,
    value: int,
    start: str = "2026-07-01",
    end: str = "2026-11-20",
    ident: str | None = None,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": ident or code,
        "status": "final",
        "code": {"coding": [{"system": METRICS, "code": code}]},
        "subject": {"reference": "#patient"},
        "effectivePeriod": {"start": start, "end": end},
        "valueInteger": value,
    }


def eligible_referral(identifier: str | None = None) -> dict[str, Any]:
    """Chronic migraine with 20 headache and 12 migraine days a month for months: eligible."""
    resource = service_request(identifier)
    resource["contained"] += [
        metric("headache-days-per-month", 20, ident="hd"),
        metric("migraine-days-per-month", 12, ident="md"),
        {
            "resourceType": "Observation",
            "id": "preg",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
            "subject": {"reference": "#patient"},
            "effectiveDateTime": "2026-11-22T09:00:00Z",
            "valueCodeableConcept": {
                "coding": [{"system": "http://snomed.info/sct", "code": "60001007"}]
            },
        },
    ]
    resource["supportingInfo"] = [
        {"reference": "#hd"},
        {"reference": "#md"},
        {"reference": "#preg"},
    ]
    return resource


def variant(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copied = copy.deepcopy(resource)
    copied.update(changes)
    return copied


def post_referral(client: Any, resource: dict[str, Any]) -> str:
    """POST a ServiceRequest through the Flask test client; its id (a 201 is asserted)."""
    response = client.post(
        "/fhir/ServiceRequest", json=resource, headers={"Content-Type": FHIR_JSON}
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def referral_task(client: Any, referral_id: str) -> dict[str, Any]:
    """The referral's Task, as the referrer searches for it."""
    bundle = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    return dict(bundle["entry"][0]["resource"])
