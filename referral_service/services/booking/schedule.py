"""Booking through the schedule port: what the booking and cancel jobs need of a schedule, and
the two steps every booking takes.

The port has two adapters: the clinic's own chairs (`adapters/db/chairs.py`) and the clinic
EHR's Schedules and Slots (`adapters/ehr/slots.py`); the composition root picks one.

Retry vs give up: EhrUnavailable (and any EhrError with `retryable`) means try again later;
other EhrErrors, NotBookable and ClinicError mean a person must look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.domain.decision import Decision
from referral_service.domain.scheduling.booking import (
    NO_SLOT,
    BookingOutcome,
    BookingRequest,
    NotBookable,
)
from referral_service.domain.scheduling.clinic import Clinic, ClinicError
from referral_service.domain.scheduling.clinic import Protocol as InfusionProtocol
from referral_service.domain.scheduling.window import BookingWindow, booking_window
from referral_service.fhir import scheduling as fs

__all__ = [
    "NO_SLOT",
    "BookingOutcome",
    "BookingRequest",
    "NotBookable",
    "Schedule",
    "book_in",
    "cancel_in",
    "find_time",
]


class Schedule(Protocol):
    """Where infusion chairs are booked."""

    def find(
        self,
        request: BookingRequest,
        window: BookingWindow,
        protocol: InfusionProtocol,
        now: datetime,
    ) -> Any:
        """Outside any transaction: look for a free run (and, on the EHR, book it there)."""

    def record(self, uow: SqlUnitOfWork, held: Any, now: datetime) -> BookingOutcome:
        """In the booking's transaction: our appointments row for what `find` held."""

    def release(self, referral_id: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Outside any transaction: free every visit the schedule holds for the referral; our
        row id -> the cancelled Appointment where the schedule keeps one."""


def find_time(schedule: Schedule, request: BookingRequest, clinic: Clinic, now: datetime) -> Any:
    """The first step of a booking: the window the decision allows, then the schedule's look."""
    protocol = _protocol(request.decision, clinic)
    decision = request.decision
    window = booking_window(
        decision.priority, request.received_at, now, decision.earliest_start, clinic
    )
    return schedule.find(request, window, protocol, now)


def book_in(uow: SqlUnitOfWork, schedule: Schedule, held: Any, now: datetime) -> BookingOutcome:
    """The second step, in the caller's transaction."""
    return schedule.record(uow, held, now)


def _protocol(decision: Decision, clinic: Clinic) -> InfusionProtocol:
    if not decision.protocol:
        raise NotBookable(f"referral {decision.referral}: the decision names no protocol")
    try:
        return clinic.protocol(decision.protocol)
    except ClinicError as exc:
        raise NotBookable(str(exc)) from exc


def cancel_in(
    uow: SqlUnitOfWork,
    rows: Sequence[Mapping[str, Any]],
    released: Mapping[str, dict[str, Any]],
    now: datetime,
) -> bool:
    """Our rows of a cancelled series (every visit, a repeat due, their chair cells freed), in
    the caller's transaction. False when there was nothing to cancel."""
    if not rows:
        return bool(released)
    for row in rows:
        _cancel_row(uow, row, released.get(row["id"]), now)
    return True


def _cancel_row(
    uow: SqlUnitOfWork, row: Mapping[str, Any], released: dict[str, Any] | None, now: datetime
) -> None:
    resource = released or fs.with_status(row["resource"], "cancelled")
    if released and row["resource"].get("basedOn"):  # the mirror keeps naming our own copy
        resource = {**released, "basedOn": row["resource"]["basedOn"]}
    if row["status"] != "cancelled":
        version = row["version_id"] + 1
        if not row["ehr_reference"]:
            resource = {
                **resource,
                "meta": {"versionId": str(version), "lastUpdated": fs.fhir_instant(now)},
            }
        uow.appointments.update(
            row["id"],
            {
                "status": "cancelled",
                "version_id": version,
                "resource": resource,
                "last_updated": now,
            },
        )
    uow.appointments.release_cells(row["id"])
