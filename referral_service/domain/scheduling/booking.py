"""What a booking is asked for and what it comes to (shared by local and EHR booking)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.domain.decision import Decision
from referral_service.domain.scheduling.planner import NoRoom, Occurrence


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
    # When the referrer wants the visits (ServiceRequest.occurrence[x]); unset: no constraint.
    occurrence: Occurrence = Occurrence()


@dataclass(frozen=True)
class BookingOutcome:
    status: str  # "booked" | "no-slot"
    appointment_id: str | None = None  # our appointments.id
    ehr_reference: str | None = None  # "Appointment/{id}" on the EHR
    chair_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    reason: str | None = None  # a no-slot's constraint when it is the referrer's own

    @property
    def booked(self) -> bool:
        return self.status == "booked"


NO_SLOT = BookingOutcome("no-slot")


def no_slot(no_room: NoRoom | None) -> BookingOutcome:
    """No series fits; the referrer is told when their occurrence was what had no room."""
    if no_room is not None and no_room.constraint == "occurrence":
        return BookingOutcome("no-slot", reason="occurrence")
    return NO_SLOT


def outcome_of(row: Mapping[str, Any]) -> BookingOutcome:
    """The outcome for one of our appointments rows."""
    return BookingOutcome(
        "booked", row["id"], row["ehr_reference"], row["chair_id"], row["start"], row["end"]
    )
