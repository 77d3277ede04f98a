"""POST /fhir/Task: the referrer's own Task for one of its referrals (BSeR REST push). It
becomes the referral's Task, carrying the referrer's identifiers as placer identifiers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from flask.blueprints import BlueprintSetupState

from referral_service.api.fhir_io import (
    check_accept,
    etag,
    public_base,
    read_resource,
    runtime,
    written_response,
)
from referral_service.api.fhir_resources import push
from referral_service.fhir.outcome import Issue, Unprocessable
from referral_service.fhir.validation import expect_resource_type, require_valid
from referral_service.services.intake import resources

placer_task_bp = Blueprint("fhir_placer_task", __name__)

PLACER = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "PLAC",
            "display": "Placer Identifier",
        }
    ]
}


@placer_task_bp.post("/fhir/Task")
def post_placer_task() -> Response:
    check_accept()
    document = read_resource()
    expect_resource_type(document, "Task")
    require_valid(document)
    task = resources.adopt_placer_task(
        runtime(), push(), _focused_referral(document), placer_identifiers(document)
    )
    version = int(task["meta"]["versionId"])
    root = public_base()
    headers = {
        "Location": f"{root}/fhir/Task/{task['id']}/_history/{version}",
        "ETag": etag(version),
    }
    # 200, not 201: no Task is created, the referral's own one answers.
    return written_response(task, 200, headers)


def _focused_referral(document: dict[str, Any]) -> str:
    focus = document.get("focus") or {}
    found = resources.relative_reference(focus.get("reference"))
    if found is None or found[0] != "ServiceRequest":
        raise Unprocessable.single(
            "required", "Task.focus must reference one of your ServiceRequests", "Task.focus"
        )
    return found[1]


def placer_identifiers(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The referrer's Task identifiers, typed PLAC: they name the Task in the placer's system."""
    identifiers = document.get("identifier") or []
    issues = [
        issue for index, item in enumerate(identifiers) if (issue := _identifier_issue(index, item))
    ]
    if issues:
        raise Unprocessable(*issues)
    return [{**item, "type": PLACER} for item in identifiers]


def _identifier_issue(index: int, identifier: dict[str, Any]) -> Issue | None:
    path = (f"Task.identifier[{index}]",)
    system, value = identifier.get("system"), identifier.get("value")
    if not system or not value:
        # Without both, the referrer could not find its Task again by identifier.
        return Issue("required", "a Task identifier needs a system and a value", path)
    if max(len(system), len(value)) > 512:
        return Issue("value", "identifier system and value are limited to 512 characters", path)
    return None


def _advertise(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if entry["type"] == "Task":
            entry["interaction"].append({"code": "create"})
            entry["documentation"] = (
                "create: a referrer's Task whose focus is one of its ServiceRequests returns "
                "that referral's Task (200) with the referrer's identifiers added as PLAC"
            )


@placer_task_bp.record_once
def _register_capability(state: BlueprintSetupState) -> None:
    state.app.config.setdefault("CAPABILITY_EXTENSIONS", []).append(_advertise)
