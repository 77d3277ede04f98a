"""Placing an eligible referral order on a real EHR (SEKMET): Patient, Observations and the
ServiceRequest that references them, as a physician's EHR would hold them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from referral_service.adapters.ehr.client import FhirClient
from tests.support.referrals import eligible_referral

CATEGORY_SYSTEM = "https://referral-service.dev/test-category"


def place_order(ehr: FhirClient, category: str) -> dict[str, Any]:
    """Create the order's Patient and Observations, then the order; returns the order."""
    template = eligible_referral(f"ehr-order-{uuid.uuid4().hex[:10]}")
    ids: dict[str, str] = {}
    for contained in template.pop("contained"):
        resource = copy.deepcopy(contained)
        local = resource.pop("id")
        if "subject" in resource:
            resource["subject"] = {"reference": ids["#patient"]}
        created = ehr.create(resource)
        ids[f"#{local}"] = f"{created['resourceType']}/{created['id']}"
    template["subject"] = {"reference": ids["#patient"]}
    template["supportingInfo"] = [
        {"reference": ids[s["reference"]]} for s in template["supportingInfo"]
    ]
    template["category"] = [{"coding": [{"system": CATEGORY_SYSTEM, "code": category}]}]
    return ehr.create(template)
