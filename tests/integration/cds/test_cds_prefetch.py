"""Which prefetch keys the service reads itself: the absent ones and those where the CDS client
put an OperationOutcome; never the ones it was given, nor a null one (the spec's "no data")."""

from __future__ import annotations

import time
from typing import Any

import pytest

from referral_service.services.assessment.cds_chart import read_chart
from referral_service.services.assessment.cds_hooks import cards_for, short
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
    chart = read_chart(prefetch, ehr, deadline=time.monotonic() + 5, no_reader_reason="none")
    assert sorted(asked) == ["conditions", "patient"]  # read side by side: order not fixed
    assert chart.complete
    found = chart.resources
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


@pytest.mark.serial  # wall-clock bound: `make test` runs it alone, after the parallel tests
def test_a_part_that_fails_or_is_late_is_named_unread_and_the_rest_is_kept() -> None:
    from referral_service.services.assessment.cds_chart import TIMED_OUT, ChartUnreadable

    def ehr(key: str) -> Any:
        if key == "conditions":
            raise ChartUnreadable("the EHR refused the read (HTTP 403)")
        if key == "observations":
            time.sleep(2)
        if key == "medications":
            raise KeyError("a bug in a reader is not a crash")
        return patient()

    started = time.monotonic()
    chart = read_chart({}, ehr, deadline=started + 0.3, no_reader_reason="none")
    assert time.monotonic() - started < 1.0
    assert chart.unread == {
        "conditions": "the EHR refused the read (HTTP 403)",
        "observations": TIMED_OUT,
        "medications": "the EHR's answer could not be used",
    }
    assert [r["resourceType"] for r in chart.resources] == ["Patient"]
    assert "fever or severe hypertension in the last 24 hours" in chart.red_flag_checks_not_run()


def test_without_a_reader_every_missing_part_is_unread_for_the_reason_given() -> None:
    prefetch = full_prefetch()
    del prefetch["observations"]
    chart = read_chart(prefetch, None, deadline=time.monotonic(), no_reader_reason="no server")
    assert chart.unread == {"observations": "no server"}
    assert not chart.complete


def test_the_order_subject_must_be_the_patient_in_context() -> None:
    from referral_service.services.assessment.cds_hooks import is_for_patient

    def order(subject: Any) -> dict[str, Any]:
        return {"resourceType": "ServiceRequest", "subject": subject}

    assert is_for_patient(order({"reference": "Patient/p1"}), "p1")
    assert is_for_patient(order({"reference": "https://ehr.example.org/fhir/Patient/p1"}), "p1")
    assert is_for_patient(order({"reference": "Patient/p1/_history/3"}), "p1")
    assert not is_for_patient(order({"reference": "Patient/p2"}), "p1")
    assert not is_for_patient(order({"reference": "Group/p1"}), "p1")
    assert not is_for_patient(order({"identifier": {"value": "p1"}}), "p1")
    assert not is_for_patient(order(None), "p1")
