"""A read-only look at the clinic EHR's infusion Schedules: the day loads of their booked
infusion Appointments and their free Slots as chair times (the one batch search booking uses).

Nothing is held or written; the CDS Hooks card's earliest-infusion date is computed from it.
"""

from __future__ import annotations

from datetime import datetime

from referral_service.adapters.ehr import series_steps as steps
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.slots import infusion_schedules
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.rules import Visit
from referral_service.domain.scheduling.slots import Candidate


class EhrScheduleLook:
    def __init__(self, ehr: FhirClient, clinic: Clinic, schedule_ids: tuple[str, ...]) -> None:
        self.ehr, self.clinic, self.schedule_ids = ehr, clinic, schedule_ids

    def look(
        self, start: datetime, end: datetime, protocol: Protocol
    ) -> tuple[list[Visit], list[Candidate]]:
        """The visits booked on the infusion chairs (their nurse load) and the chair times free."""
        schedules = infusion_schedules(self.ehr, self.schedule_ids)
        if not schedules:
            return [], []
        day_start = start.astimezone(self.clinic.zone).replace(hour=0, minute=0, second=0)
        # No referral of ours yet (a draft order): every booked visit counts.
        _, booked, offered = steps.range_offer(
            self.ehr, self.clinic, schedules, "", protocol, (start, day_start, end)
        )
        return booked, offered
