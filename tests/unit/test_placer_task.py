"""What the placer may change in its referral's Task (fhir/placer_task.placer_edit), and what a
JSON Patch leaves of it: pure, no database."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from referral_service.fhir.outcome import Unprocessable
from referral_service.fhir.placer_task import (
    PLACER,
    apply_json_patch,
    placer_edit,
    read_placer_task,
)

HELD = {"system": "https://er.example.org/tasks", "value": "t-1", "type": PLACER}


def _task(**changes: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": "task-1",
        "meta": {"versionId": "3", "lastUpdated": "2026-11-23T14:00:00Z"},
        "identifier": [HELD],
        "status": "on-hold",
        "businessStatus": {"text": "needs-information"},
        "intent": "order",
        "focus": {"reference": "ServiceRequest/r-1"},
        "for": {"reference": "Patient/p-1"},
        "input": [{"type": {"text": "migraine days"}, "valueString": "migraine days"}],
        "lastModified": "2026-11-23T14:00:00Z",
    }
    task.update(changes)
    return task


def _refused(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    with pytest.raises(Unprocessable) as caught:
        placer_edit(current, wanted)
    return [path for issue in caught.value.issues for path in issue.expression]


def test_the_same_task_back_changes_nothing() -> None:
    edit = placer_edit(_task(), _task(meta={"versionId": "9"}, lastModified="2030-01-01"))
    assert (edit.cancel, edit.inputs, edit.identifiers) == (False, [], [HELD])


def test_cancel_with_a_reason() -> None:
    wanted = _task(status="cancelled", statusReason={"text": "patient moved away"})
    edit = placer_edit(_task(), wanted)
    assert edit.cancel and edit.reason == "patient moved away"


def test_a_resent_cancel_is_no_second_cancel() -> None:
    current = _task(status="cancelled")
    edit = placer_edit(current, _task(status="cancelled", statusReason={"text": "again"}))
    assert not edit.cancel


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("businessStatus", {"text": "booked"}),
        ("output", [{"valueReference": {"reference": "Appointment/a"}}]),
        ("owner", {"reference": "Organization/clinic"}),
        ("focus", {"reference": "ServiceRequest/other"}),
        ("for", {"reference": "Patient/other"}),
        ("intent", "plan"),
        ("note", [{"text": "hello"}]),
    ],
)
def test_a_field_the_clinic_owns_is_refused_by_name(field: str, value: Any) -> None:
    assert _refused(_task(), _task(**{field: value})) == [f"Task.{field}"]


def test_removing_a_clinic_field_is_a_change_too() -> None:
    wanted = _task()
    del wanted["businessStatus"]
    assert _refused(_task(), wanted) == ["Task.businessStatus"]


@pytest.mark.parametrize("status", ["accepted", "completed", "in-progress", "rejected"])
def test_a_status_other_than_cancelled_is_the_clinics(status: str) -> None:
    assert _refused(_task(), _task(status=status)) == ["Task.status"]


def test_status_reason_without_cancelling_is_the_clinics() -> None:
    assert _refused(_task(), _task(statusReason={"text": "x"})) == ["Task.statusReason"]


def test_every_refused_field_is_named() -> None:
    wanted = _task(owner={"reference": "Organization/x"}, status="completed")
    assert sorted(_refused(_task(), wanted)) == ["Task.owner", "Task.status"]


def test_new_input_references_are_new_data() -> None:
    added = {"type": {"text": "diary"}, "valueReference": {"reference": "Observation/o-9"}}
    edit = placer_edit(_task(), _task(input=[*_task()["input"], added]))
    assert edit.inputs == [added]


def test_an_input_that_is_no_reference_is_refused() -> None:
    added = {"type": {"text": "note"}, "valueString": "see letter"}
    assert _refused(_task(), _task(input=[*_task()["input"], added])) == [
        "Task.input[1].valueReference"
    ]


def test_the_clinics_inputs_stay() -> None:
    assert _refused(_task(), _task(input=[])) == ["Task.input"]


def test_identifiers_may_be_added_not_dropped() -> None:
    more = {"system": "https://er.example.org/other", "value": "t-2"}
    edit = placer_edit(_task(), _task(identifier=[HELD, more]))
    assert edit.identifiers == [HELD, {**more, "type": PLACER}]
    assert _refused(_task(), _task(identifier=[more])) == ["Task.identifier"]


def test_json_patch_applies_and_a_failed_test_is_422() -> None:
    current = _task()
    patched = apply_json_patch(current, [{"op": "replace", "path": "/status", "value": "x"}])
    assert patched["status"] == "x" and current["status"] == "on-hold"
    with pytest.raises(Unprocessable):
        apply_json_patch(current, [{"op": "test", "path": "/status", "value": "booked"}])
    with pytest.raises(Unprocessable):
        apply_json_patch(current, [{"op": "remove", "path": "/nothing/here"}])
    with pytest.raises(Unprocessable):
        apply_json_patch(current, {"op": "remove"})


def test_reading_the_placers_task() -> None:
    task = read_placer_task(
        {"focus": {"reference": "ServiceRequest/r-1"}, "identifier": [copy.deepcopy(HELD)]}
    )
    assert task.referral_id == "r-1" and task.identifiers[0]["type"] == PLACER
    for focus in ({"reference": "Patient/p"}, {"reference": "urn:uuid:x"}, None):
        with pytest.raises(Unprocessable):
            read_placer_task({"focus": focus})
    with pytest.raises(Unprocessable):
        read_placer_task({"focus": {"reference": "ServiceRequest/r"}, "identifier": [{"x": 1}]})
