"""Which prefetch keys the service reads itself: the absent ones, the null ones and those where
the CDS client put an OperationOutcome; never the ones it was given."""

from __future__ import annotations

from typing import Any

from referral_service.services.assessment.cds_hooks import (
    HookCall,
    cards_for,
    short,
    supporting_resources,
)
from tests.integration.cds.cds_requests import full_prefetch, patient, searchset


def test_only_missing_or_failed_prefetch_keys_are_read_from_the_ehr() -> None:
    asked: list[str] = []

    def ehr(key: str) -> Any:
        asked.append(key)
        return [patient()] if key == "patient" else searchset([])

    prefetch = full_prefetch()
    prefetch["patient"] = {"resourceType": "OperationOutcome", "issue": []}
    prefetch["medications"] = None
    del prefetch["conditions"]
    found = supporting_resources(HookCall("order-sign", "p", [], prefetch), ehr)
    assert asked == ["patient", "conditions", "medications"]
    assert [r["resourceType"] for r in found].count("Patient") == 1
    assert all(r["resourceType"] != "OperationOutcome" for r in found)


def test_summaries_stay_under_140_characters() -> None:
    assert len(short("x" * 500)) == 139
    assert short("fits") == "fits"


def test_cards_name_the_decision_in_their_source() -> None:
    from referral_service.domain.decision import Decision

    decision = Decision("r", "ineligible", "none", "routine", None, policy_version="v9")
    [card] = cards_for(decision, "Clinic policy v9")
    assert card["source"]["label"] == "Clinic policy v9"
    assert card["source"]["topic"]["code"] == "ineligible"
    assert card["indicator"] == "warning"
