"""The schedule of the clinic's own chairs (no EHR): appointments on the clinic file's chairs,
in our own database.

Overlap is prevented by the database, not by this code: every appointment claims its chair's
cells in `chair_claims` (primary key chair + cell) in the same transaction as its row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain.scheduling.booking import (
    NO_SLOT,
    BookingOutcome,
    BookingRequest,
    outcome_of,
)
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.slots import Candidate, local_candidates
from referral_service.domain.scheduling.window import BookingWindow
from referral_service.fhir import scheduling as fs

DAY = timedelta(days=1)


@dataclass
class FreeChairs:
    """What a look at the chairs found: the referral's row, and the runs free at that moment."""

    request: BookingRequest
    protocol: Protocol
    existing: Mapping[str, Any] | None
    candidates: Iterator[Candidate]


class ClinicChairs:
    def __init__(self, clinic: Clinic, unit_of_work: Callable[..., SqlUnitOfWork]) -> None:
        self.clinic = clinic
        self._unit_of_work = unit_of_work

    def find(
        self, request: BookingRequest, window: BookingWindow, protocol: Protocol, now: datetime
    ) -> FreeChairs:
        clinic = self.clinic
        with self._unit_of_work(read_only=True) as uow:
            existing = uow.appointments.for_referral(request.referral_id)
            chair_ids = [c.id for c in clinic.chairs]
            busy = uow.appointments.busy_cells(
                chair_ids, window.opens - DAY, window.closes + DAY, clinic.cell
            )
        booked = existing is not None and existing["status"] == "booked"
        if booked or window.is_empty:
            return FreeChairs(request, protocol, existing, iter(()))
        found = local_candidates(clinic, window, protocol.duration, busy)
        return FreeChairs(request, protocol, existing, iter(found))

    def record(self, uow: SqlUnitOfWork, held: FreeChairs, now: datetime) -> BookingOutcome:
        """Claim the first run still free, in the caller's transaction (a savepoint each)."""
        existing = held.existing
        if existing is not None and existing["status"] == "booked":
            return outcome_of(existing)
        for candidate in held.candidates:
            try:
                with uow.savepoint():
                    return self._claim(uow, held, candidate, now)
            except KeyTaken:
                # A cell was claimed since we looked (or another worker booked this referral).
                again = uow.appointments.for_referral(held.request.referral_id)
                if again is not None and again["status"] == "booked":
                    return outcome_of(again)
        return NO_SLOT

    def release(self, referral_id: str, row: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Nothing to do outside our database: the row's cells go with its cancellation."""
        return None

    def _claim(
        self, uow: SqlUnitOfWork, held: FreeChairs, candidate: Candidate, now: datetime
    ) -> BookingOutcome:
        """Appointment row and its chair cells together: all claimed or none."""
        values = self._row(held, candidate, now)
        if held.existing is not None:
            uow.appointments.update(values["id"], values)
        else:
            uow.appointments.add(values)
        uow.appointments.claim_cells(
            values["id"], candidate.chair_id, candidate.start, candidate.end, self.clinic.cell
        )
        return outcome_of(values)

    def _row(self, held: FreeChairs, candidate: Candidate, now: datetime) -> dict[str, Any]:
        """The appointments row (a cancelled earlier row is reused: referral_id is unique)."""
        existing, request, protocol = held.existing, held.request, held.protocol
        appointment_id = existing["id"] if existing is not None else uuid.uuid4().hex
        version = existing["version_id"] + 1 if existing is not None else 1
        resource = self._resource(request, candidate, protocol)
        resource.update(
            id=appointment_id,
            meta={"versionId": str(version), "lastUpdated": fs.fhir_instant(now)},
        )
        row = dict(id=appointment_id, referral_id=request.referral_id, sender=request.sender)
        row.update(status="booked", chair_id=candidate.chair_id, protocol=protocol.name)
        row.update(start=candidate.start, end=candidate.end, version_id=version)
        row.update(ehr_reference=None, resource=resource, last_updated=now)
        return row

    def _resource(
        self, request: BookingRequest, candidate: Candidate, protocol: Protocol
    ) -> dict[str, Any]:
        """The FHIR Appointment we serve for a local booking (chairs are logical references)."""
        chair = next(c for c in self.clinic.chairs if c.id == candidate.chair_id)
        return fs.build_appointment(
            referral_id=request.referral_id,
            service_request_ref=request.service_request_ref,
            patient_ref=request.patient_ref,
            patient=dict(request.patient) if request.patient is not None else None,
            start=candidate.start,
            end=candidate.end,
            chair={
                "identifier": {"system": fs.CHAIR_SYSTEM, "value": chair.id},
                "display": chair.name,
            },
            protocol=protocol.name,
        )
