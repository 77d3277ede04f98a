"""Appointment.basedOn never names a guessed host (issue 21): REFERRAL_PUBLIC_URL or relative."""

from __future__ import annotations

from types import SimpleNamespace

from referral_service.config import Settings
from referral_service.services.booking.book import service_request_reference


def test_based_on_is_absolute_under_the_public_url() -> None:
    runtime = SimpleNamespace(settings=Settings(public_url="https://referrals.example/"))
    assert service_request_reference(runtime, "r-1") == (
        "https://referrals.example/fhir/ServiceRequest/r-1"
    )


def test_based_on_is_relative_without_one() -> None:
    runtime = SimpleNamespace(settings=Settings(public_url=None))
    assert service_request_reference(runtime, "r-1") == "ServiceRequest/r-1"
