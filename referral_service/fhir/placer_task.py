"""The placer's own Task for one of its referrals (BSeR, the FHIR workflow "Task with focus"
pattern): what of it the clinic takes (the focused ServiceRequest, the placer's identifiers
typed PLAC), and which of its fields the placer may change afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import jsonpointer

from referral_service.fhir.outcome import Issue, Unprocessable

PLACER = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "PLAC",
            "display": "Placer Identifier",
        }
    ]
}

_REFERENCE = re.compile(r"^ServiceRequest/([A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$")


@dataclass(frozen=True)
class PlacerTask:
    referral_id: str  # the focused ServiceRequest's id on this server
    identifiers: list[dict[str, Any]]  # the placer's, typed PLAC


def read_placer_task(document: dict[str, Any]) -> PlacerTask:
    """The placer's Task, its references already resolved to this server (`ServiceRequest/id`)."""
    return PlacerTask(focused_referral(document), placer_identifiers(document))


def focused_referral(document: dict[str, Any]) -> str:
    focus = document.get("focus") if isinstance(document.get("focus"), dict) else {}
    match = _REFERENCE.match(str(focus.get("reference") or ""))  # type: ignore[union-attr]
    if match is None:
        raise Unprocessable.single(
            "required", "Task.focus must reference one of your ServiceRequests", "Task.focus"
        )
    return match.group(1)


def placer_identifiers(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The referrer's Task identifiers, typed PLAC: they name the Task in the placer's system."""
    identifiers = document.get("identifier") or []
    if not isinstance(identifiers, list):
        raise Unprocessable.single("structure", "Task.identifier must be a list", "Task.identifier")
    issues = [
        issue for index, item in enumerate(identifiers) if (issue := _identifier_issue(index, item))
    ]
    if issues:
        raise Unprocessable(*issues)
    return [{**item, "type": PLACER} for item in identifiers]


def _identifier_issue(index: int, identifier: Any) -> Issue | None:
    path = (f"Task.identifier[{index}]",)
    if not isinstance(identifier, dict):
        return Issue("structure", "a Task identifier must be an object", path)
    system, value = identifier.get("system"), identifier.get("value")
    if not system or not value:
        # Without both, the referrer could not find its Task again by identifier.
        return Issue("required", "a Task identifier needs a system and a value", path)
    if max(len(system), len(value)) > 512:
        return Issue("value", "identifier system and value are limited to 512 characters", path)
    return None


# --- what the placer may change (PUT/PATCH of the referral's Task) ---------------------------

# The server's bookkeeping, not content: ignored when comparing.
_BOOKKEEPING = frozenset({"id", "meta", "text", "lastModified"})
_PLACER_OWNED = frozenset({"identifier", "status", "statusReason", "input", "contained"})


@dataclass(frozen=True)
class PlacerEdit:
    """What the placer asked for: cancel (with its reason), new identifiers, new inputs."""

    cancel: bool
    reason: str | None
    identifiers: list[dict[str, Any]]  # typed PLAC, all of them (held ones included)
    inputs: list[dict[str, Any]]  # new `input` entries, each a reference to a resource
    # Contained QuestionnaireResponses a new input names (`#id`): answers to the referral form.
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)


def placer_edit(current: dict[str, Any], wanted: dict[str, Any]) -> PlacerEdit:
    """The placer's changes from the Task it holds (`current`) to the one it sent (`wanted`).
    A change to anything the clinic owns is refused, each such field named FHIRPath-style."""
    if wanted.get("resourceType") != "Task":
        raise Unprocessable.single("invalid", "the body must be a Task", "Task.resourceType")
    issues = [
        Issue("business-rule", f"Task.{name} is the clinic's to change", (f"Task.{name}",))
        for name in sorted((set(current) | set(wanted)) - _BOOKKEEPING - _PLACER_OWNED)
        if current.get(name) != wanted.get(name)
    ]
    cancel = _status_change(current, wanted, issues)
    cancelling = wanted.get("status") == "cancelled"  # a resend of a cancel may say it again
    if not cancelling and current.get("statusReason") != wanted.get("statusReason"):
        issues.append(
            Issue(
                "business-rule",
                "Task.statusReason is the clinic's to change, unless the Task is cancelled",
                ("Task.statusReason",),
            )
        )
    inputs = _new_inputs(current.get("input") or [], wanted.get("input") or [], issues)
    answers = _contained_answers(current, wanted, inputs, issues)
    held = current.get("identifier") or []
    if any(item not in (wanted.get("identifier") or []) for item in held):
        issues.append(
            Issue("business-rule", "Task.identifier: held identifiers stay", ("Task.identifier",))
        )
    if issues:
        raise Unprocessable(*issues)
    reason = wanted.get("statusReason") if cancel else None
    return PlacerEdit(cancel, _reason_text(reason), placer_identifiers(wanted), inputs, answers)


def _status_change(current: dict[str, Any], wanted: dict[str, Any], issues: list[Issue]) -> bool:
    status = wanted.get("status")
    if status == current.get("status"):
        return False
    if status == "cancelled":
        return True
    issues.append(
        Issue(
            "business-rule",
            f"Task.status: the placer may only cancel (to 'cancelled'), not set {status!r}",
            ("Task.status",),
        )
    )
    return False


def _new_inputs(held: list[Any], wanted: list[Any], issues: list[Issue]) -> list[dict[str, Any]]:
    """The clinic's inputs stay as they are; the placer may add references to its resources."""
    if not isinstance(wanted, list):
        issues.append(Issue("structure", "Task.input must be a list", ("Task.input",)))
        return []
    if any(item not in wanted for item in held):
        issues.append(
            Issue("business-rule", "Task.input: the clinic's inputs stay", ("Task.input",))
        )
    added = [item for item in wanted if item not in held]
    for item in added:
        where = f"Task.input[{wanted.index(item)}]"
        reference = item.get("valueReference") if isinstance(item, dict) else None
        if not isinstance(reference, dict) or not (
            _is_relative(reference.get("reference"))
            or str(reference.get("reference")).startswith("#")
        ):
            issues.append(
                Issue(
                    "business-rule",
                    f"{where}: a new input must be a valueReference to a resource you pushed",
                    (f"{where}.valueReference",),
                )
            )
    return added


def _contained_answers(
    current: dict[str, Any],
    wanted: dict[str, Any],
    inputs: list[dict[str, Any]],
    issues: list[Issue],
) -> dict[str, dict[str, Any]]:
    """`#id` -> the contained QuestionnaireResponse a new input names. The clinic keeps no
    contained resources on its Task: each is taken as answers and the input points at it."""
    contained = wanted.get("contained") or []
    if current.get("contained") or not isinstance(contained, list):
        issues.append(Issue("business-rule", "Task.contained is the clinic's", ("Task.contained",)))
        return {}
    by_id = {
        f"#{item.get('id')}": item
        for item in contained
        if isinstance(item, dict) and item.get("id")
    }
    references = [
        item.get("valueReference") for item in inputs if isinstance(item, dict)
    ]  # a malformed input is refused by _new_inputs already
    named = {
        str(ref.get("reference"))
        for ref in references
        if isinstance(ref, dict) and str(ref.get("reference")).startswith("#")
    }
    for index, item in enumerate(contained):
        key = f"#{item.get('id')}" if isinstance(item, dict) else ""
        if key not in named or item.get("resourceType") != "QuestionnaireResponse":
            issues.append(
                Issue(
                    "business-rule",
                    f"Task.contained[{index}]: only a QuestionnaireResponse a new input names "
                    "(#id) may be contained",
                    (f"Task.contained[{index}]",),
                )
            )
    for key in sorted(named - set(by_id)):
        issues.append(
            Issue("not-found", f"Task.input: {key} names no contained resource", ("Task.input",))
        )
    return {key: by_id[key] for key in named if key in by_id}


def _is_relative(reference: Any) -> bool:
    return isinstance(reference, str) and bool(_RELATIVE.match(reference))


_RELATIVE = re.compile(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _reason_text(reason: Any) -> str | None:
    if not isinstance(reason, dict):
        return None
    codings = [c for c in reason.get("coding") or [] if isinstance(c, dict)]
    text = reason.get("text") or next((c.get("display") or c.get("code") for c in codings), None)
    return str(text)[:500] if text else None


def apply_json_patch(current: dict[str, Any], operations: Any) -> dict[str, Any]:
    """The Task as an RFC 6902 JSON Patch leaves it (a failed `test` or a bad path: 422)."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise Unprocessable.single("structure", "a JSON Patch is a list of operations")
    try:
        patched = jsonpatch.JsonPatch(operations).apply(current)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise Unprocessable.single("processing", f"the JSON Patch does not apply: {exc}") from None
    if not isinstance(patched, dict):
        raise Unprocessable.single("processing", "the JSON Patch must leave a Task")
    return patched
