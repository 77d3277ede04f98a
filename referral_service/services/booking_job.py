"""The worker's `book` job: book an eligible referral and move its Task to booked or no-slot."""

from __future__ import annotations

from typing import Any

from referral_service.adapters.db import referrals as repo
from referral_service.adapters.ehr.errors import EhrUnavailable
from referral_service.domain import lifecycle
from referral_service.observability import metrics
from referral_service.services.booking import BookingRequest, book_referral
from referral_service.services.tasks import write_task


def book_stored_referral(runtime: Any, referral_id: str, retry_later: type[Exception]) -> str:
    with runtime.engine.connect() as conn:
        referral = repo.get_referral(conn, referral_id)
        task = repo.get_task_for_referral(conn, referral_id)
    if referral is None or task is None or referral.decision is None:
        return "skipped"
    if not lifecycle.may_book(task.state):
        return f"skipped ({task.state.business_status})"
    request = BookingRequest(
        referral_id=referral_id,
        sender=referral.sender,
        patient_ref=referral.patient_ref,
        service_request_ref=service_request_reference(runtime, referral_id),
        decision=referral.decision,
        received_at=referral.received_at,
        patient=patient_to_contain(referral, on_ehr=runtime.ehr_client is not None),
    )
    try:
        outcome = book_referral(
            request,
            clinic=runtime.clinic,
            engine=runtime.engine,
            ehr=runtime.ehr_client,
            settings=runtime.settings,
            now=runtime.now(),
        )
    except EhrUnavailable as exc:
        _mark_retrying(runtime, referral_id, type(exc).__name__)
        raise retry_later(type(exc).__name__) from exc
    return _record_outcome(runtime, referral_id, outcome)


def patient_to_contain(referral: Any, *, on_ehr: bool) -> dict[str, Any] | None:
    """The referral's Patient when its reference would dangle in the Appointment: a contained
    `#id` anywhere, or, on the clinic EHR, a Patient only this service holds (referrals that came
    from the EHR itself name the EHR's own Patient and need nothing)."""
    ref = referral.patient_ref or ""
    if ref.startswith("#"):
        return _find_patient(referral.resource.get("contained") or [], ref[1:])
    if on_ehr and referral.source != "webhook" and ref.startswith("Patient/"):
        return _find_patient(referral.supporting, ref.split("/")[-1])
    return None


def _find_patient(resources: list[dict[str, Any]], patient_id: str) -> dict[str, Any] | None:
    for resource in resources:
        if resource.get("resourceType") == "Patient" and resource.get("id") == patient_id:
            return {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return None


def service_request_reference(runtime: Any, referral_id: str) -> str:
    """Appointment.basedOn: our ServiceRequest, absolute under REFERRAL_PUBLIC_URL (an EHR
    cannot resolve it otherwise). Unset, it is relative: right on our own Appointments; the
    worker has no request to learn its address from, and a guessed host would be wrong."""
    if not runtime.settings.public_url:
        return f"ServiceRequest/{referral_id}"
    return f"{runtime.settings.public_url.rstrip('/')}/fhir/ServiceRequest/{referral_id}"


def _mark_retrying(runtime: Any, referral_id: str, error: str) -> None:
    now = runtime.now()
    with runtime.engine.begin() as conn:
        task = repo.get_task_for_referral(conn, referral_id)
        repo.add_event(conn, referral_id, "booking-attempt-failed", now, error=error)
        if task is not None and task.state.business_status != "ehr-retrying":
            write_task(conn, referral_id, lifecycle.ehr_retrying(task.state), now)


def _record_outcome(runtime: Any, referral_id: str, outcome: Any) -> str:
    now = runtime.now()
    with runtime.engine.begin() as conn:
        if outcome.booked:
            repo.add_event(
                conn,
                referral_id,
                "booked",
                now,
                appointment=outcome.appointment_id,
                chair=outcome.chair_id,
                start=outcome.start.isoformat(),
            )
            write_task(conn, referral_id, lifecycle.BOOKED, now)
        else:
            repo.add_event(conn, referral_id, "no-slot", now)
            write_task(
                conn,
                referral_id,
                lifecycle.NO_SLOT,
                now,
                status_note="no infusion chair is free inside the booking window; "
                "clinic staff have been told",
            )
    metrics.booking_finished("booked" if outcome.booked else "no-slot")
    return "booked" if outcome.booked else "no-slot"
