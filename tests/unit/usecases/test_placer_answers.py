"""A placer Task update carrying contained answers to the referral form, specified on the fake
unit of work: the answers are stored, the Task names them, and one evaluation is queued for the
whole update (keyed on the Task's new version), not a second one keyed on the answers."""

from __future__ import annotations

import dataclasses
from typing import Any

from referral_service.domain import lifecycle
from referral_service.domain.policy import load_policy
from referral_service.services.intake.placer_updates import change_task
from tests.support.fakes import NOW, FakeRuntime
from tests.support.form_answers import frequency, pregnancy, response


def _waiting_runtime() -> FakeRuntime:
    runtime = FakeRuntime()
    runtime.policy = load_policy(None)
    runtime.add_referral("r1", lifecycle.NEEDS_INFORMATION)
    task = runtime.store.tasks["r1"]
    held = {"resourceType": "Task", "id": task.id, "status": "on-hold", "intent": "order"}
    runtime.store.tasks["r1"] = dataclasses.replace(task, resource=held)
    return runtime


def _with_answers(task: dict[str, Any]) -> dict[str, Any]:
    answers = {**response(frequency(20, 12, 6), pregnancy()), "id": "qr"}
    named = {"type": {"text": "referral form answers"}, "valueReference": {"reference": "#qr"}}
    return {**task, "contained": [answers], "input": [named]}


def test_contained_answers_queue_one_evaluation_for_the_update() -> None:
    runtime = _waiting_runtime()
    updated = change_task(
        runtime,  # type: ignore[arg-type]
        sender="clinic-a",
        task_id="task-r1",
        edit=_with_answers,
        if_match=None,
        now=NOW,
    )
    store = runtime.store
    [(kind, response_id)] = store.resources
    assert kind == "QuestionnaireResponse"
    assert updated["input"][-1]["valueReference"] == {
        "reference": f"QuestionnaireResponse/{response_id}"
    }
    evaluations = [job for job in store.jobs if job["kind"] == "evaluate"]
    assert [job["payload"] for job in evaluations] == [{"after": "Task/task-r1/_history/2"}]
    assert store.event_kinds("r1") == ["answers-received", "new-data"]
    assert store.commits == 1
