"""Local scheduling (no EHR): appointments on the clinic file's chairs, in our own database.

Overlap is prevented by the database, not by this code: every appointment claims its chair's
cells in `chair_claims` (primary key chair + cell) in the same transaction as its row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from referral_service.adapters.db import local_schedule as ls
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.slots import Candidate, local_candidates
from referral_service.domain.scheduling.window import BookingWindow
from referral_service.fhir import scheduling as fs
from referral_service.services.booking_model import (
    NO_SLOT,
    BookingOutcome,
    BookingRequest,
    outcome_of,
)

DAY = timedelta(days=1)


def book_locally(
    request: BookingRequest,
    clinic: Clinic,
    engine: Engine,
    window: BookingWindow,
    protocol: Protocol,
    now: datetime,
) -> BookingOutcome:
    with engine.connect() as conn:
        existing = ls.find_appointment(conn, request.referral_id)
        if existing is not None and existing["status"] == "booked":
            return outcome_of(existing)
        chair_ids = [c.id for c in clinic.chairs]
        busy = ls.busy_cells(conn, chair_ids, window.opens - DAY, window.closes + DAY, clinic.cell)
    if window.is_empty:
        return NO_SLOT
    for candidate in local_candidates(clinic, window, protocol.duration, busy):
        try:
            return _claim(engine, request, clinic, candidate, protocol, existing, now)
        except IntegrityError:
            # A cell was claimed since we looked (or another worker booked this referral).
            with engine.connect() as conn:
                again = ls.find_appointment(conn, request.referral_id)
            if again is not None and again["status"] == "booked":
                return outcome_of(again)
    return NO_SLOT


def _claim(
    engine: Engine,
    request: BookingRequest,
    clinic: Clinic,
    candidate: Candidate,
    protocol: Protocol,
    existing: Mapping[str, Any] | None,
    now: datetime,
) -> BookingOutcome:
    """Appointment row and its chair cells in one transaction: all claimed or none."""
    values = _row(request, clinic, candidate, protocol, existing, now)
    with engine.begin() as conn:
        if existing is not None:
            ls.update_appointment(conn, values["id"], values)
        else:
            ls.insert_appointment(conn, values)
        ls.claim_cells(
            conn, values["id"], candidate.chair_id, candidate.start, candidate.end, clinic.cell
        )
    return outcome_of(values)


def _row(
    request: BookingRequest,
    clinic: Clinic,
    candidate: Candidate,
    protocol: Protocol,
    existing: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The appointments row (a cancelled earlier row is reused: referral_id is unique)."""
    appointment_id = existing["id"] if existing is not None else uuid.uuid4().hex
    version = existing["version_id"] + 1 if existing is not None else 1
    resource = _resource(request, clinic, candidate, protocol, now)
    resource.update(
        id=appointment_id, meta={"versionId": str(version), "lastUpdated": fs.fhir_instant(now)}
    )
    row = dict(id=appointment_id, referral_id=request.referral_id, sender=request.sender)
    row.update(status="booked", chair_id=candidate.chair_id, protocol=protocol.name)
    row.update(start=candidate.start, end=candidate.end, version_id=version)
    row.update(ehr_reference=None, resource=resource, last_updated=now)
    return row


def _resource(
    request: BookingRequest, clinic: Clinic, candidate: Candidate, protocol: Protocol, now: datetime
) -> dict[str, Any]:
    """The FHIR Appointment we serve for a local booking (chairs are logical references)."""
    chair = next(c for c in clinic.chairs if c.id == candidate.chair_id)
    return fs.build_appointment(
        referral_id=request.referral_id,
        service_request_ref=request.service_request_ref,
        patient_ref=request.patient_ref,
        patient=dict(request.patient) if request.patient is not None else None,
        start=candidate.start,
        end=candidate.end,
        chair={"identifier": {"system": fs.CHAIR_SYSTEM, "value": chair.id}, "display": chair.name},
        protocol=protocol.name,
    )
