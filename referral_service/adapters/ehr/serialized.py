"""The EHR schedule with its bookings taken one at a time per clinic: `find` (search, plan,
transaction) runs under the clinic's booking lock (adapters/db/booking_lock.py says why and
how); `record` and `release` need no lock (the EHR's own version checks guard a cancel)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from referral_service.adapters.db.booking_lock import BookingBusy
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr.ehr_schedule import EhrSchedule, HeldSeries
from referral_service.adapters.ehr.errors import ScheduleBusy
from referral_service.domain.scheduling.booking import BookingOutcome, BookingRequest
from referral_service.domain.scheduling.clinic import Protocol
from referral_service.domain.scheduling.window import BookingWindow

BookingLock = Callable[[], AbstractContextManager[None]]


class SerializedEhrSchedule:
    def __init__(self, schedule: EhrSchedule, lock: BookingLock) -> None:
        self.schedule = schedule
        self._lock = lock

    def find(
        self, request: BookingRequest, window: BookingWindow, protocol: Protocol, now: datetime
    ) -> HeldSeries:
        try:
            with self._lock():
                return self.schedule.find(request, window, protocol, now)
        except BookingBusy as exc:  # nothing booked on the EHR: the job retries later
            raise ScheduleBusy(str(exc)) from exc

    def record(self, uow: SqlUnitOfWork, held: HeldSeries, now: datetime) -> BookingOutcome:
        return self.schedule.record(uow, held, now)

    def release(self, referral_id: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return self.schedule.release(referral_id, rows)
