"""The referrer's own Task for one of its referrals (BSeR REST push): `POST /fhir/Task` makes it
the referral's Task, carrying the referrer's identifiers as placer identifiers; `PUT`/`PATCH`
of that Task are the placer's changes (cancel, new identifiers, new supporting data)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from referral_service.api.fhir_io import (
    check_accept,
    etag,
    parse_if_match,
    public_base,
    read_resource,
    runtime,
    written_response,
)
from referral_service.api.fhir_resources import push
from referral_service.api.identity import current_sender
from referral_service.fhir.outcome import Unreadable, UnsupportedMediaType
from referral_service.fhir.placer_task import apply_json_patch, read_placer_task
from referral_service.fhir.validation import check_json_sizes, expect_resource_type, require_valid
from referral_service.services.intake import placer_updates, resources

placer_task_bp = Blueprint("fhir_placer_task", __name__)

JSON_PATCH = "application/json-patch+json"


@placer_task_bp.post("/fhir/Task")
def post_placer_task() -> Response:
    check_accept()
    document = read_resource()
    expect_resource_type(document, "Task")
    require_valid(document)
    placer = read_placer_task(document)
    task = resources.adopt_placer_task(runtime(), push(), placer.referral_id, placer.identifiers)
    # 200, not 201: no Task is created, the referral's own one answers.
    return _answer(task)


@placer_task_bp.put("/fhir/Task/<task_id>")
def put_task(task_id: str) -> Response:
    check_accept()
    document = read_resource()
    expect_resource_type(document, "Task")
    require_valid(document)
    return _answer(_change(task_id, lambda _current: document))


@placer_task_bp.patch("/fhir/Task/<task_id>")
def patch_task(task_id: str) -> Response:
    check_accept()
    operations = _read_patch()
    return _answer(_change(task_id, lambda current: _patched(current, operations)))


def _patched(current: dict[str, Any], operations: Any) -> dict[str, Any]:
    patched = apply_json_patch(current, operations)
    require_valid(patched)
    return patched


def _change(task_id: str, edit: placer_updates.Edit) -> dict[str, Any]:
    return placer_updates.change_task(
        runtime(),
        sender=current_sender(),
        task_id=task_id,
        edit=edit,
        if_match=parse_if_match(request.headers.get("If-Match")),
        now=runtime().now(),
    )


def _read_patch() -> Any:
    kind = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind != JSON_PATCH:
        raise UnsupportedMediaType.single(
            "not-supported", f"PATCH takes a JSON Patch: send Content-Type {JSON_PATCH}"
        )
    limit = runtime().settings.max_body_bytes
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise Unreadable.single("too-costly", f"the body is over the {limit}-byte limit")
    try:
        operations = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Unreadable.single("structure", "the body is not valid JSON") from None
    check_json_sizes(operations)
    return operations


def _answer(task: dict[str, Any]) -> Response:
    version = int(task["meta"]["versionId"])
    headers = {
        "Location": f"{public_base()}/fhir/Task/{task['id']}/_history/{version}",
        "ETag": etag(version),
    }
    return written_response(task, 200, headers)


def _advertise(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if entry["type"] == "Task":
            entry["interaction"].extend({"code": code} for code in ("create", "update", "patch"))
            entry["versioning"] = "versioned-update"
            entry["updateCreate"] = False
            entry["documentation"] = (
                "create: a referrer's Task whose focus is one of its ServiceRequests returns "
                "that referral's Task (200) with the referrer's identifiers added as PLAC. "
                "update/patch (JSON Patch, If-Match honoured): the referrer may cancel "
                "(status=cancelled, statusReason), add identifiers and add input references "
                "to resources it pushed (new data); every other field is the clinic's (422)"
            )


@placer_task_bp.record_once
def _register_capability(state: BlueprintSetupState) -> None:
    state.app.config.setdefault("CAPABILITY_EXTENSIONS", []).append(_advertise)
