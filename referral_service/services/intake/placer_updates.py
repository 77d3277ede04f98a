"""The placer changes its referral through the referral's Task (`PUT`/`PATCH /fhir/Task/{id}`):
it may cancel it, add its identifiers, and point at new supporting data; the rest is the
clinic's (fhir/placer_task.placer_edit says which is which)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from referral_service.adapters.db.queries import render_referral
from referral_service.adapters.db.unit_of_work import KeyTaken, SqlUnitOfWork
from referral_service.domain import lifecycle
from referral_service.domain.errors import AlreadyHeld, NotKnown, StaleVersion, Unacceptable
from referral_service.fhir.placer_task import PlacerEdit, placer_edit
from referral_service.fhir.questionnaire_response import check_response
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake.form_answers import store_answers
from referral_service.services.intake.resources import identifiers, relative_reference
from referral_service.services.intake.revisions import cancel_by_referrer
from referral_service.services.tasks import TaskChanged

# On hold for data, or not yet decided: new data is worth another evaluation.
_WAITING = frozenset({"needs-information", "received"})

# The placer's body from the Task it holds: the whole new Task (PUT), or a patch applied.
Edit = Callable[[dict[str, Any]], dict[str, Any]]


def change_task(
    runtime: Dependencies,
    *,
    sender: str,
    task_id: str,
    edit: Edit,
    if_match: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The referral's Task after the placer's change, in one transaction."""
    try:
        with runtime.unit_of_work() as uow:
            task = uow.tasks.get(task_id)
            if task is None or task.sender != sender:
                raise NotKnown(f"Task/{task_id} is not known")
            # Locking the referral serializes this with the worker's writes of the Task.
            uow.referrals.get(task.referral_id, for_update=True)
            task = uow.tasks.get(task_id)
            assert task is not None
            if if_match is not None and if_match != task.version_id:
                raise StaleVersion(
                    f"version {if_match} is stale; the current version is {task.version_id}"
                )
            wanted = edit(task.resource)
            if wanted.get("id") not in (None, task_id):
                raise Unacceptable("the resource id does not match the URL", "Task.id")
            change = placer_edit(task.resource, wanted)
            _check_inputs(uow, sender, change)
            change = _take_answers(runtime, uow, sender, task.referral_id, change, now)
            return _apply(uow, sender, task.referral_id, change, now)
    except KeyTaken as exc:
        raise AlreadyHeld(
            "an identifier of this Task already names another Task", "Task.identifier"
        ) from exc


def _check_inputs(uow: SqlUnitOfWork, sender: str, change: PlacerEdit) -> None:
    for item in change.inputs:
        if item["valueReference"]["reference"] in change.answers:
            continue  # a contained QuestionnaireResponse, taken by _take_answers
        found = relative_reference(item["valueReference"]["reference"])
        stored = uow.resources.get(found[0], found[1]) if found else None
        if stored is None or stored.sender != sender:
            reference = item["valueReference"]["reference"]
            raise Unacceptable(
                f"Task.input: {reference} is not one of the resources you pushed",
                "Task.input.valueReference",
            )


def _take_answers(
    runtime: Dependencies,
    uow: SqlUnitOfWork,
    sender: str,
    referral_id: str,
    change: PlacerEdit,
    now: datetime,
) -> PlacerEdit:
    """Contained answers to the referral form, checked (422 naming the item) and stored as the
    web form's are; each input then names the stored QuestionnaireResponse."""
    if not change.answers:
        return change
    form = runtime.policy.form
    if form is None:
        raise Unacceptable("this clinic has no referral form", "Task.contained")
    stored: dict[str, str] = {}
    for key, document in change.answers.items():
        check_response(document, form)
        body = {k: v for k, v in document.items() if k != "id"}
        taken = store_answers(uow, sender=sender, referral_id=referral_id, document=body, now=now)
        stored[key] = f"QuestionnaireResponse/{taken.id}"
    inputs = [
        {**item, "valueReference": {**item["valueReference"], "reference": stored[ref]}}
        if (ref := item["valueReference"]["reference"]) in stored
        else item
        for item in change.inputs
    ]
    return replace(change, inputs=inputs, answers={})


def _apply(
    uow: SqlUnitOfWork, sender: str, referral_id: str, change: PlacerEdit, now: datetime
) -> dict[str, Any]:
    task = uow.tasks.for_referral(referral_id)
    assert task is not None
    if change.cancel and task.state != lifecycle.CANCELLED:
        note = f"cancelled by the referrer: {change.reason}" if change.reason else None
        cancel_by_referrer(uow, referral_id, now, via="Task", status_note=note)
        task = uow.tasks.for_referral(referral_id)
        assert task is not None
    resource = dict(task.resource)
    changed = False
    if change.identifiers != resource.get("identifier", []):
        resource["identifier"] = change.identifiers
        changed = True
    if change.inputs:
        resource["input"] = list(resource.get("input") or []) + change.inputs
        changed = True
    if not changed:
        return task.resource
    version = task.version_id + 1
    resource = render_referral(resource, task.id, version, now)
    uow.tasks.save(task.id, task.state, resource, version, now)
    uow.resources.claim_identifiers(sender, "Task", task.id, identifiers(resource))
    head = uow.referrals.head(referral_id)
    assert head is not None
    uow.collect(TaskChanged(referral_id, head.source, version, now))
    if change.inputs and task.state.business_status in _WAITING:
        uow.events.add(referral_id, "new-data", now, via="Task")
        jobs.evaluate_after_change(uow, referral_id, f"Task/{task.id}/_history/{version}", now)
    return resource
