"""The worker's `book` and `cancel` jobs: book an eligible referral and move its Task to booked
or no-slot; cancel a referral's appointment. Each ends in one transaction: the appointment row,
the Task, the history and the job's completion commit together."""

from __future__ import annotations

from typing import Any

from referral_service.adapters.db.referrals import ReferralRow
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr.errors import EhrUnavailable
from referral_service.domain import lifecycle
from referral_service.fhir.notifications import ehr_identifier_system
from referral_service.fhir.occurrence import requested_occurrence
from referral_service.observability import metrics
from referral_service.services.booking.schedule import (
    BookingOutcome,
    BookingRequest,
    book_in,
    cancel_in,
    find_time,
)
from referral_service.services.dependencies import Dependencies
from referral_service.services.jobs import Finish, Job, RetryLater
from referral_service.services.tasks import write_task


def book_job(runtime: Dependencies, job: Job, finish: Finish) -> str:
    assert job.referral_id is not None
    referral_id = job.referral_id
    with runtime.unit_of_work(read_only=True) as uow:
        referral = uow.referrals.get(referral_id)
        task = uow.tasks.for_referral(referral_id)
        ehr_order = ehr_order_reference(runtime, uow, referral)
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
        ehr_order_ref=ehr_order,
        occurrence=requested_occurrence(referral.resource, runtime.clinic.zone),
    )
    try:
        held = find_time(runtime.schedule, request, runtime.clinic, runtime.now())
    except EhrUnavailable as exc:
        _mark_retrying(runtime, referral_id, type(exc).__name__)
        raise RetryLater(type(exc).__name__) from exc
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        outcome = book_in(uow, runtime.schedule, held, now)
        result = _record_outcome(uow, referral_id, outcome, now)
        finish(uow, result)
    metrics.booking_finished(result)
    return result


def patient_to_contain(referral: ReferralRow, *, on_ehr: bool) -> dict[str, Any] | None:
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


def ehr_order_reference(
    runtime: Dependencies, uow: SqlUnitOfWork, referral: ReferralRow | None
) -> str | None:
    """The EHR's own `ServiceRequest/<id>` for a referral that came from the clinic EHR (its
    webhook or reconciliation), so the EHR links its order to the infusion; else None."""
    base = runtime.settings.ehr_base_url
    if referral is None or runtime.ehr_client is None or not base or referral.source != "webhook":
        return None
    order_id = uow.identifiers.value_of(referral.id, ehr_identifier_system(str(base)))
    return f"ServiceRequest/{order_id}" if order_id else None


def service_request_reference(runtime: Dependencies, referral_id: str) -> str:
    """Appointment.basedOn: our ServiceRequest, absolute under REFERRAL_PUBLIC_URL (an EHR
    cannot resolve it otherwise). Unset, it is relative: right on our own Appointments; the
    worker has no request to learn its address from, and a guessed host would be wrong."""
    if not runtime.settings.public_url:
        return f"ServiceRequest/{referral_id}"
    return f"{runtime.settings.public_url.rstrip('/')}/fhir/ServiceRequest/{referral_id}"


def _mark_retrying(runtime: Dependencies, referral_id: str, error: str) -> None:
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        task = uow.tasks.for_referral(referral_id)
        uow.events.add(referral_id, "booking-attempt-failed", now, error=error)
        if task is not None and task.state.business_status != "ehr-retrying":
            write_task(uow, referral_id, lifecycle.ehr_retrying(task.state), now)


def _record_outcome(uow: SqlUnitOfWork, referral_id: str, outcome: BookingOutcome, now: Any) -> str:
    if outcome.booked:
        assert outcome.start is not None
        uow.events.add(
            referral_id,
            "booked",
            now,
            appointment=outcome.appointment_id,
            chair=outcome.chair_id,
            start=outcome.start.isoformat(),
        )
        write_task(uow, referral_id, lifecycle.BOOKED, now)
        return "booked"
    uow.events.add(
        referral_id, "no-slot", now, **({"reason": outcome.reason} if outcome.reason else {})
    )
    write_task(uow, referral_id, lifecycle.NO_SLOT, now, status_note=_no_slot_note(outcome))
    return "no-slot"


def _no_slot_note(outcome: BookingOutcome) -> str:
    if outcome.reason == "occurrence":
        return (
            "no infusion chair is free inside the booking window at the time the referral "
            "asks for (ServiceRequest.occurrence); clinic staff have been told"
        )
    return "no infusion chair is free inside the booking window; clinic staff have been told"


def cancel_job(runtime: Dependencies, job: Job, finish: Finish) -> str:
    assert job.referral_id is not None
    referral_id = job.referral_id
    with runtime.unit_of_work(read_only=True) as uow:
        rows = uow.appointments.series(referral_id)
    try:
        released = runtime.schedule.release(referral_id, rows)
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        cancel_in(uow, rows, released, now)
        uow.events.add(referral_id, "appointment-cancelled", now)
        write_task(uow, referral_id, lifecycle.CANCELLED, now)
        finish(uow, "cancelled")
    metrics.booking_finished("cancelled")
    return "cancelled"


def gave_up(uow: SqlUnitOfWork, job: Job, error: str, now: Any, *, permanent: bool = False) -> None:
    """The job failed for good (in the transaction that fails it): the referral's Task says
    so, so staff can act (and retry). `permanent`: dead-lettered at once, `error` being why
    retrying cannot fix it."""
    if job.referral_id is None:
        return
    task = uow.tasks.for_referral(job.referral_id)
    uow.events.add(
        job.referral_id,
        "gave-up",
        now,
        job=job.kind,
        attempts=job.attempts,
        error=error[:200],
        **({"dead_letter": True} if permanent else {}),
    )
    if task is not None and not task.state.is_final:
        write_task(
            uow,
            job.referral_id,
            lifecycle.EHR_FAILED,
            now,
            status_note=f"{job.kind} failed and retrying cannot fix it: {error[:300]}"
            if permanent
            else f"{job.kind} failed after {job.attempts} attempts",
        )
    if job.kind == "book":
        metrics.booking_finished("ehr-failed")
