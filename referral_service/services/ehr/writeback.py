"""Outcomes back to the EHR: the referral's Task, copied to the EHR as a Task whose focus is the
EHR's own ServiceRequest, so the referring physician sees accepted / booked / rejected /
needs-information, with the reasons, in their own EHR.

A job per local Task version (queued in the Task's transaction); the job writes the Task as it
is *when the job runs*, so jobs that run late or out of order still leave the newest state.
Created with If-None-Exist on our Task identifier, updated with If-Match.
"""

from __future__ import annotations

import json
from typing import Any

from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr.errors import EhrConflict, EhrUnavailable
from referral_service.adapters.ehr.headers import etag
from referral_service.fhir.notifications import ehr_identifier_system
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.jobs import Job, RetryLater
from referral_service.services.tasks import TaskChanged

TASK_SYSTEM = "https://referral-service.dev/task"
_COPIED = (
    "status",
    "businessStatus",
    "statusReason",
    "intent",
    "code",
    "authoredOn",
    "lastModified",
    "for",
    "note",
    "input",
)


def task_changed(uow: SqlUnitOfWork, event: TaskChanged) -> None:
    """A Task changed: queue its write-back for referrals that came from the EHR (the job
    itself checks REFERRAL_EHR_WRITEBACK)."""
    if event.source != "webhook" and not _linked_to_ehr(uow, event.referral_id):
        return
    jobs.write_back_task(uow, event.referral_id, event.version, event.at)


def _linked_to_ehr(uow: SqlUnitOfWork, referral_id: str) -> bool:
    return any(
        system.endswith("/ServiceRequest") for system in uow.identifiers.systems_of(referral_id)
    )


def write_back(runtime: Dependencies, job: Job) -> str:
    """The `ehr-task-writeback` job."""
    if not runtime.settings.writes_back_to_ehr or runtime.ehr_client is None:
        return "skipped (write-back off)"
    assert job.referral_id is not None
    try:
        for _ in range(3):
            desired = _desired_task(runtime, job.referral_id)
            if desired is None:
                return "skipped (not an EHR order)"
            try:
                return _put(runtime.ehr_client, desired)
            except EhrConflict:
                continue  # someone (another job) wrote in between: read both sides again
    except EhrUnavailable as exc:
        raise RetryLater(type(exc).__name__) from exc
    raise RetryLater("the EHR Task kept changing")


def _desired_task(runtime: Dependencies, referral_id: str) -> dict[str, Any] | None:
    system = ehr_identifier_system(str(runtime.settings.ehr_base_url))
    with runtime.unit_of_work(read_only=True) as uow:
        order_id = uow.identifiers.value_of(referral_id, system)
        task = uow.tasks.for_referral(referral_id)
        appointment = uow.appointments.for_referral(referral_id)
    if order_id is None or task is None or not task.resource:
        return None
    booked = appointment and appointment["status"] != "cancelled" and appointment["ehr_reference"]
    return ehr_task(task.resource, order_id, booked or None)


def ehr_task(local: dict[str, Any], order_id: str, appointment_ref: str | None) -> dict[str, Any]:
    """Our Task as the EHR should hold it: its focus is the EHR's ServiceRequest, its output
    the EHR's Appointment; our Task id is its identifier."""
    task = {key: local[key] for key in _COPIED if key in local}
    if str((task.get("for") or {}).get("reference", "")).startswith("#"):
        del task["for"]  # a patient contained in a directly sent referral means nothing there
    task["resourceType"] = "Task"
    task["identifier"] = [{"system": TASK_SYSTEM, "value": local["id"]}]
    task["focus"] = {"reference": f"ServiceRequest/{order_id}"}
    task["basedOn"] = [{"reference": f"ServiceRequest/{order_id}"}]
    if appointment_ref:
        task["output"] = [
            {"type": {"text": "appointment"}, "valueReference": {"reference": appointment_ref}}
        ]
    return task


def _put(ehr: Any, desired: dict[str, Any]) -> str:
    identifier = desired["identifier"][0]
    current = ehr.create(
        desired, if_none_exist=f"identifier={identifier['system']}|{identifier['value']}"
    )
    if _same(current, desired):
        return f"EHR Task/{current.get('id')} {desired['status']}"
    ehr.update({**desired, "id": current["id"]}, if_match=etag(current))
    return f"EHR Task/{current.get('id')} updated to {desired['status']}"


def _same(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    def canonical(task: dict[str, Any]) -> str:
        body = {k: v for k, v in task.items() if k not in ("id", "meta", "text")}
        return json.dumps(body, sort_keys=True)

    return canonical(current) == canonical(desired)
