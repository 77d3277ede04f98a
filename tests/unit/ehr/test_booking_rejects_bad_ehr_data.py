"""Booking refuses EHR data it cannot trust (offset-less times), with a clear, final error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses
from sqlalchemy import create_engine

from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrDataError
from referral_service.config import Settings
from referral_service.domain.decision import Decision
from referral_service.domain.scheduling.clinic import load_clinic
from referral_service.fhir.scheduling import fhir_instant
from referral_service.runtime import book_referral
from referral_service.services.booking.schedule import BookingRequest

BASE = "https://ehr.test/fhir"
NOW = datetime.now(UTC).replace(microsecond=0)


def bundle(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


@responses.activate
def test_offset_less_slot_time_is_an_ehr_data_error() -> None:
    start = NOW + timedelta(days=1)
    responses.get(f"{BASE}/Appointment", json=bundle())
    responses.get(
        f"{BASE}/Schedule/s1",
        json={"resourceType": "Schedule", "id": "s1", "actor": [{"reference": "Location/c1"}]},
    )
    slots = bundle(
        {
            "resourceType": "Slot",
            "id": "bad",
            "status": "free",
            "schedule": {"reference": "Schedule/s1"},
            "start": start.replace(tzinfo=None).isoformat(),  # no offset
            "end": fhir_instant(start + timedelta(minutes=15)),
        }
    )
    # The range's Slots and Appointments come in one batch (its answer: two searchsets).
    responses.post(
        BASE,
        json={
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [
                {"resource": slots, "response": {"status": "200 OK"}},
                {"resource": bundle(), "response": {"status": "200 OK"}},
            ],
        },
    )
    decision = Decision(
        referral="r1",
        decision="eligible",
        category="chronic-migraine",
        priority="routine",
        protocol="eptinezumab",
    )
    request = BookingRequest("r1", "clinic-a", None, "ServiceRequest/r1", decision, NOW)
    settings = Settings.from_env({"REFERRAL_EHR_BASE_URL": BASE, "REFERRAL_EHR_SCHEDULES": "s1"})
    with pytest.raises(EhrDataError, match="Slot/bad start has no UTC offset") as caught:
        book_referral(
            request,
            clinic=load_clinic(None),
            engine=create_engine("sqlite://"),
            ehr=FhirClient(BASE),
            settings=settings,
            now=NOW,
        )
    assert not caught.value.retryable
