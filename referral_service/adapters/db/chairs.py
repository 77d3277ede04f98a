"""The schedule of the clinic's own chairs (no EHR): a referral's whole series of visits on the
clinic file's chairs, in our own database, all visits or none.

The planner (domain/scheduling/planner.py) chooses the series inside the booking's transaction,
after a clinic-wide booking lock (nurse rules span chairs, so two bookings planned side by side
could each be right and together wrong). Chair overlap is still prevented by the database: every
visit claims its chair's cells in `chair_claims` (primary key chair + cell), all in one savepoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain.scheduling.booking import (
    NO_SLOT,
    BookingOutcome,
    BookingRequest,
    no_slot,
    outcome_of,
)
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.planner import Plan, SeriesRequest, plan_series
from referral_service.domain.scheduling.repeat_booking import (
    books_repeat,
    due_window,
    plan_repeat,
)
from referral_service.domain.scheduling.rules import Visit
from referral_service.domain.scheduling.series_booking import (
    booked_visits,
    due_instants,
    load_range,
)
from referral_service.domain.scheduling.window import BookingWindow
from referral_service.fhir import scheduling as fs

PLAN_ATTEMPTS = 3  # a cell claimed under us (another process without the lock): plan again


@dataclass
class FreeChairs:
    """What booking on the chairs is asked for; the plan is made in `record`'s transaction."""

    request: BookingRequest
    protocol: Protocol
    window: BookingWindow


class ClinicChairs:
    def __init__(self, clinic: Clinic, unit_of_work: Callable[..., SqlUnitOfWork]) -> None:
        self.clinic = clinic
        self._unit_of_work = unit_of_work

    def find(
        self, request: BookingRequest, window: BookingWindow, protocol: Protocol, now: datetime
    ) -> FreeChairs:
        return FreeChairs(request, protocol, window)

    def record(self, uow: SqlUnitOfWork, held: FreeChairs, now: datetime) -> BookingOutcome:
        """Plan and claim the whole series in the caller's transaction, or book nothing."""
        request = held.request
        booked = [
            r for r in uow.appointments.series(request.referral_id) if r["status"] == "booked"
        ]
        if booked:
            return outcome_of(booked[0])
        if held.window.is_empty:
            return NO_SLOT
        uow.appointments.lock_for_booking()
        for _ in range(PLAN_ATTEMPTS):
            plan = self._plan(uow, held)
            if not isinstance(plan, Plan):
                return no_slot(plan)
            try:
                with uow.savepoint():
                    return self._claim(uow, held, plan, now)
            except KeyTaken:
                continue
        return NO_SLOT

    def release(self, referral_id: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Nothing to do outside our database: the rows' cells go with their cancellation."""
        return {}

    def _plan(self, uow: SqlUnitOfWork, held: FreeChairs) -> Any:
        others = self._booked_around(uow, held.window, held.protocol)
        request = SeriesRequest(
            held.protocol.name,
            held.request.decision.priority or "routine",
            held.window,
            held.request.occurrence,
        )
        return plan_series(self.clinic, request, others, None)

    def _booked_around(
        self, uow: SqlUnitOfWork, window: BookingWindow, protocol: Protocol
    ) -> list[Visit]:
        """The live visits loading the days a series of `protocol` in `window` may use."""
        reach = load_range(window, protocol)
        return booked_visits(self.clinic, uow.appointments.live_between(reach.opens, reach.closes))

    def _claim(
        self, uow: SqlUnitOfWork, held: FreeChairs, plan: Plan, now: datetime
    ) -> BookingOutcome:
        """Every visit's row and chair cells, and a repeat course due: all or none."""
        earlier = {r["visit"]: r for r in uow.appointments.series(held.request.referral_id)}
        visits = len(plan.visits)
        first: dict[str, Any] | None = None
        for number, visit in enumerate(plan.visits, 1):
            values = self._row(held, visit, (number, visits), earlier.get(number), now)
            self._write(uow, values, earlier.get(number))
            uow.appointments.claim_cells(
                values["id"], visit.chair_id, visit.start, visit.end, self.clinic.cell
            )
            first = first or values
        if plan.repeat_due is not None and not self._book_repeat(uow, held, plan, earlier, now):
            due = self._due_row(held, plan, visits, earlier.get(visits + 1), now)
            self._write(uow, due, earlier.get(visits + 1))
        assert first is not None
        return outcome_of(first)

    def _book_repeat(
        self,
        uow: SqlUnitOfWork,
        held: FreeChairs,
        plan: Plan,
        earlier: Mapping[int, Mapping[str, Any]],
        now: datetime,
    ) -> bool:
        """The repeat course's visits booked, its first in the due window (the clinic books
        repeats and the whole course has room), in a savepoint of their own: all of them, or
        False and it is recorded as due."""
        if plan.repeat_due is None or not books_repeat(held.protocol):
            return False
        others = self._booked_around(uow, due_window(self.clinic, plan.repeat_due), held.protocol)
        first_course = [v.start for v in plan.visits]
        found = plan_repeat(
            self.clinic, held.protocol, plan.repeat_due, others, first_course=first_course
        )
        if not isinstance(found, Plan):
            return False
        visits = len(plan.visits)
        try:
            with uow.savepoint():
                for number, visit in enumerate(found.visits, visits + 1):
                    values = self._row(held, visit, (number, visits), earlier.get(number), now)
                    values["resource"] = fs.as_repeat(
                        values["resource"], (number - visits, len(found.visits))
                    )
                    self._write(uow, values, earlier.get(number))
                    uow.appointments.claim_cells(
                        values["id"], visit.chair_id, visit.start, visit.end, self.clinic.cell
                    )
        except KeyTaken:  # a cell claimed under us: the first course stands, the repeat is due
            return False
        return True

    @staticmethod
    def _write(uow: SqlUnitOfWork, values: dict[str, Any], earlier: Any) -> None:
        if earlier is not None:  # a cancelled earlier series: its rows are reused
            uow.appointments.update(values["id"], values)
        else:
            uow.appointments.add(values)

    def _row(
        self,
        held: FreeChairs,
        visit: Visit,
        number: tuple[int, int],
        earlier: Mapping[str, Any] | None,
        now: datetime,
    ) -> dict[str, Any]:
        request, protocol = held.request, held.protocol
        appointment_id = earlier["id"] if earlier is not None else uuid.uuid4().hex
        version = earlier["version_id"] + 1 if earlier is not None else 1
        resource = self._resource(request, visit, protocol, number)
        resource.update(
            id=appointment_id,
            meta={"versionId": str(version), "lastUpdated": fs.fhir_instant(now)},
        )
        row = dict(id=appointment_id, referral_id=request.referral_id, sender=request.sender)
        row.update(status="booked", chair_id=visit.chair_id, protocol=protocol.name)
        row.update(start=visit.start, end=visit.end, version_id=version)
        row.update(ehr_reference=None, resource=resource, last_updated=now)
        row.update(visit=number[0], visits=number[1])
        return row

    def _due_row(
        self,
        held: FreeChairs,
        plan: Plan,
        visits: int,
        earlier: Mapping[str, Any] | None,
        now: datetime,
    ) -> dict[str, Any]:
        assert plan.repeat_due is not None
        earliest, latest = due_instants(self.clinic, plan.repeat_due)
        request = held.request
        appointment_id = earlier["id"] if earlier is not None else uuid.uuid4().hex
        version = earlier["version_id"] + 1 if earlier is not None else 1
        resource = fs.due_appointment(
            referral_id=request.referral_id,
            service_request_ref=request.service_request_ref,
            patient_ref=request.patient_ref,
            protocol=held.protocol.name,
            earliest=earliest,
            latest=latest,
        )
        resource.update(
            id=appointment_id,
            meta={"versionId": str(version), "lastUpdated": fs.fhir_instant(now)},
        )
        row = dict(id=appointment_id, referral_id=request.referral_id, sender=request.sender)
        row.update(status="proposed", chair_id="", protocol=held.protocol.name)
        row.update(start=earliest, end=latest, version_id=version)
        row.update(ehr_reference=None, resource=resource, last_updated=now)
        row.update(visit=visits + 1, visits=visits)
        return row

    def _resource(
        self, request: BookingRequest, visit: Visit, protocol: Protocol, number: tuple[int, int]
    ) -> dict[str, Any]:
        """The FHIR Appointment we serve for a local booking (chairs are logical references)."""
        chair = next(c for c in self.clinic.chairs if c.id == visit.chair_id)
        return fs.build_appointment(
            referral_id=request.referral_id,
            service_request_ref=request.service_request_ref,
            patient_ref=request.patient_ref,
            patient=dict(request.patient) if request.patient is not None else None,
            start=visit.start,
            end=visit.end,
            chair={
                "identifier": {"system": fs.CHAIR_SYSTEM, "value": chair.id},
                "display": chair.name,
            },
            protocol=protocol.name,
            visit=number,
        )
