"""What a booking is asked for and what it comes to (shared by local and EHR booking)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.domain.decision import Decision


class NotBookable(ValueError):
    """The decision names no (known) protocol: there is nothing to book."""


@dataclass(frozen=True)
class BookingRequest:
    referral_id: str
    sender: str
    patient_ref: str | None
    service_request_ref: str
    decision: Decision
    received_at: datetime
    # The Patient to carry inside the Appointment when `patient_ref` would not resolve where the
    # Appointment lives (a contained `#id`, or our own Patient/id on the clinic EHR).
    patient: Mapping[str, Any] | None = None
    # `ServiceRequest/<id>` on the clinic EHR when the referral is the EHR's own order: the
    # Appointment written there is based on it (our own copy stays in `service_request_ref`).
    ehr_order_ref: str | None = None


@dataclass(frozen=True)
class BookingOutcome:
    status: str  # "booked" | "no-slot"
    appointment_id: str | None = None  # our appointments.id
    ehr_reference: str | None = None  # "Appointment/{id}" on the EHR
    chair_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def booked(self) -> bool:
        return self.status == "booked"


NO_SLOT = BookingOutcome("no-slot")


def outcome_of(row: Mapping[str, Any]) -> BookingOutcome:
    """The outcome for one of our appointments rows."""
    return BookingOutcome(
        "booked", row["id"], row["ehr_reference"], row["chair_id"], row["start"], row["end"]
    )
