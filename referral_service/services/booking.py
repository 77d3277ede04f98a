"""Booking use cases the worker calls: book a referral's infusion, cancel it (idempotent both).

Retry vs give up: EhrUnavailable (and any EhrError with `retryable`) means try again later;
other EhrErrors, NotBookable and ClinicError mean a person must look.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from referral_service.adapters.db import local_schedule as ls
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrNotFound
from referral_service.config import Settings
from referral_service.domain.decision import Decision
from referral_service.domain.scheduling.clinic import Clinic, ClinicError, Protocol
from referral_service.domain.scheduling.slots import Candidate
from referral_service.domain.scheduling.window import (
    BookingWindow,
    booking_window,
    search_horizons,
)
from referral_service.fhir import scheduling as fs
from referral_service.services import ehr_booking as eb
from referral_service.services.booking_model import (
    NO_SLOT,
    BookingOutcome,
    BookingRequest,
    NotBookable,
    outcome_of,
)
from referral_service.services.local_booking import book_locally

Resource = dict[str, Any]
__all__ = [
    "NO_SLOT",
    "BookingOutcome",
    "BookingRequest",
    "NotBookable",
    "book_referral",
    "cancel_booking",
]


def book_referral(
    request: BookingRequest,
    *,
    clinic: Clinic,
    engine: Engine,
    ehr: FhirClient | None,
    settings: Settings,
    now: datetime,
) -> BookingOutcome:
    protocol = _protocol(request.decision, clinic)
    decision = request.decision
    window = booking_window(
        decision.priority, request.received_at, now, decision.earliest_start, clinic
    )
    if ehr is None:
        return book_locally(request, clinic, engine, window, protocol, now)
    return _book_on_ehr(request, clinic, engine, ehr, settings, window, protocol, now)


def _protocol(decision: Decision, clinic: Clinic) -> Protocol:
    if not decision.protocol:
        raise NotBookable(f"referral {decision.referral}: the decision names no protocol")
    try:
        return clinic.protocol(decision.protocol)
    except ClinicError as exc:
        raise NotBookable(str(exc)) from exc


# -- EHR scheduling ------------------------------------------------------------------------


def _book_on_ehr(
    request: BookingRequest,
    clinic: Clinic,
    engine: Engine,
    ehr: FhirClient,
    settings: Settings,
    window: BookingWindow,
    protocol: Protocol,
    now: datetime,
) -> BookingOutcome:
    existing = eb.find_our_appointment(ehr, request.referral_id)
    if existing is not None and existing.get("status") in ("pending", "booked"):
        resumed = eb.resume_existing(ehr, existing)
        if resumed is not None:
            return _mirror(engine, request, resumed, protocol, now)
    schedules, appointment = eb.infusion_schedules(ehr, settings.ehr_schedules), existing
    for horizon in search_horizons(window, protocol.duration) if schedules else ():
        found, slots = eb.candidates(ehr, schedules, horizon, protocol.duration, clinic.zone)
        appointment, booked = eb.book_first_free(
            ehr,
            appointment,
            found,
            slots,
            lambda c: _ehr_content(request, protocol, c, schedules[c.chair_id]),
        )
        if booked and appointment is not None:
            return _mirror(engine, request, appointment, protocol, now)
    if appointment is not None and appointment.get("status") != "cancelled":
        eb.cancel(ehr, appointment)  # no pending Appointment left behind a no-slot
    return NO_SLOT


def _ehr_content(
    request: BookingRequest, protocol: Protocol, candidate: Candidate, chair: Resource
) -> Resource:
    return fs.build_appointment(
        referral_id=request.referral_id,
        service_request_ref=request.service_request_ref,
        patient_ref=request.patient_ref,
        patient=dict(request.patient) if request.patient is not None else None,
        chair=chair,
        start=candidate.start,
        end=candidate.end,
        protocol=protocol.name,
        slot_ids=candidate.slot_ids,
        status="pending",
    )


def _mirror(
    engine: Engine,
    request: BookingRequest,
    appointment: Resource,
    protocol: Protocol,
    now: datetime,
) -> BookingOutcome:
    """Write (or refresh) our row for an Appointment that lives on the EHR."""
    times = fs.appointment_times(appointment)
    values = {
        "status": appointment["status"],
        "chair_id": fs.appointment_chair(appointment) or "",
        "protocol": protocol.name,
        "start": times.start,
        "end": times.end,
        "ehr_reference": f"Appointment/{appointment['id']}",
        "resource": appointment,
        "last_updated": now,
    }
    row = _upsert(engine, request, values)
    return outcome_of(row)


def _upsert(
    engine: Engine, request: BookingRequest, values: Mapping[str, Any]
) -> Mapping[str, Any]:
    for _ in range(2):
        try:
            with engine.begin() as conn:
                row = ls.find_appointment(conn, request.referral_id)
                if row is None:
                    ls.insert_appointment(
                        conn,
                        {
                            "id": uuid.uuid4().hex,
                            "version_id": 1,
                            "referral_id": request.referral_id,
                            "sender": request.sender,
                            **values,
                        },
                    )
                else:
                    ls.update_appointment(
                        conn, row["id"], {**values, "version_id": row["version_id"] + 1}
                    )
                return dict(ls.find_appointment(conn, request.referral_id) or {})
        except IntegrityError:
            continue  # inserted concurrently: the second round updates it
    raise RuntimeError(f"cannot record the appointment of referral {request.referral_id}")


# -- cancellation --------------------------------------------------------------------------


def cancel_booking(
    referral_id: str, *, engine: Engine, ehr: FhirClient | None, now: datetime
) -> bool:
    """Cancel the referral's appointment (EHR and/or local). False when there was none."""
    with engine.connect() as conn:
        row = ls.find_appointment(conn, referral_id)
    if ehr is not None:
        appointment = _ehr_appointment(ehr, row, referral_id)
        if appointment is not None:
            appointment = eb.cancel(ehr, appointment)
        if row is not None:
            resource = appointment or fs.with_status(row["resource"], "cancelled")
            _cancel_row(engine, row, resource, now)
        return appointment is not None or row is not None
    if row is None:
        return False
    _cancel_row(engine, row, fs.with_status(row["resource"], "cancelled"), now)
    return True


def _ehr_appointment(
    ehr: FhirClient, row: Mapping[str, Any] | None, referral_id: str
) -> Resource | None:
    appointment_id = fs.reference_id((row or {}).get("ehr_reference"), "Appointment")
    if appointment_id:
        try:
            return ehr.read("Appointment", appointment_id)
        except EhrNotFound:
            return None
    return eb.find_our_appointment(ehr, referral_id)


def _cancel_row(engine: Engine, row: Mapping[str, Any], resource: Resource, now: datetime) -> None:
    with engine.begin() as conn:
        if row["status"] != "cancelled":
            version = row["version_id"] + 1
            if not row["ehr_reference"]:
                resource = {
                    **resource,
                    "meta": {"versionId": str(version), "lastUpdated": fs.fhir_instant(now)},
                }
            ls.update_appointment(
                conn,
                row["id"],
                {
                    "status": "cancelled",
                    "version_id": version,
                    "resource": resource,
                    "last_updated": now,
                },
            )
        ls.release_cells(conn, row["id"])
