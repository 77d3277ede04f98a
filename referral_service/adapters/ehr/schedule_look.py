"""A read-only look at the clinic EHR's infusion Schedules: their free Slots as chair times.

Nothing is held or written; the CDS Hooks card's earliest-infusion date is computed from it.
"""

from __future__ import annotations

from datetime import datetime

from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.slots import candidates, infusion_schedules
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.rules import Visit
from referral_service.domain.scheduling.slots import Candidate
from referral_service.domain.scheduling.window import BookingWindow


class EhrScheduleLook:
    def __init__(self, ehr: FhirClient, clinic: Clinic, schedule_ids: tuple[str, ...]) -> None:
        self.ehr, self.clinic, self.schedule_ids = ehr, clinic, schedule_ids

    def look(
        self, start: datetime, end: datetime, protocol: Protocol
    ) -> tuple[list[Visit], list[Candidate]]:
        """No booked visits (the free Slots already leave them out), and the chair times free."""
        schedules = infusion_schedules(self.ehr, self.schedule_ids)
        if not schedules:
            return [], []
        found, _ = candidates(
            self.ehr, schedules, BookingWindow(start, end), protocol.duration, self.clinic.zone
        )
        return [], found
