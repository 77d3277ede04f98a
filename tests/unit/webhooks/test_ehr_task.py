"""The Task written back to the EHR, from our Task: pure mapping, no EHR."""

from __future__ import annotations

from types import SimpleNamespace

from referral_service.adapters.db.outbox import Job
from referral_service.config import Settings
from referral_service.services.ehr.writeback import TASK_SYSTEM, ehr_task, write_back

LOCAL = {
    "resourceType": "Task",
    "id": "task-1",
    "meta": {"versionId": "3"},
    "status": "rejected",
    "businessStatus": {"coding": [{"code": "ineligible"}]},
    "statusReason": {"text": "decision ineligible"},
    "intent": "order",
    "focus": {"reference": "ServiceRequest/local-1"},
    "basedOn": [{"reference": "ServiceRequest/local-1"}],
    "for": {"reference": "Patient/p1"},
    "note": [{"text": "episodic: not-met"}],
    "output": [{"valueReference": {"reference": "Appointment/local-appt"}}],
}


def test_the_ehr_task_points_at_the_ehr_order_and_keeps_status_and_reasons() -> None:
    task = ehr_task(LOCAL, "sr-9", "Appointment/ehr-appt")
    assert task["focus"] == {"reference": "ServiceRequest/sr-9"}
    assert task["basedOn"] == [{"reference": "ServiceRequest/sr-9"}]
    assert task["identifier"] == [{"system": TASK_SYSTEM, "value": "task-1"}]
    assert task["status"] == "rejected" and task["statusReason"] == LOCAL["statusReason"]
    assert task["note"] == LOCAL["note"]
    assert task["output"][0]["valueReference"] == {"reference": "Appointment/ehr-appt"}
    assert "id" not in task and "meta" not in task


def test_without_an_ehr_appointment_there_is_no_output_and_no_contained_patient() -> None:
    task = ehr_task({**LOCAL, "for": {"reference": "#patient"}}, "sr-9", None)
    assert "output" not in task
    assert "for" not in task


def test_write_back_switched_off_touches_nothing() -> None:
    settings = Settings(ehr_base_url="http://ehr.invalid/fhir", ehr_writeback=False)
    runtime = SimpleNamespace(settings=settings, ehr_client=object(), engine=None)
    job = Job(1, "ehr-task-writeback", "r1", {}, 1, 3)
    assert write_back(runtime, job) == "skipped (write-back off)"
