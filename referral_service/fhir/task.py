"""Builds the FHIR Task that tracks a referral (design.md, Referral lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from referral_service.domain.decision import Decision
from referral_service.domain.lifecycle import BUSINESS_STATUS_SYSTEM, TaskState
from referral_service.fhir.instant import format_instant
from referral_service.fhir.scheduling import repeat_course_text

REASON_SYSTEM = "https://referral-service.dev/decision-reason"
MISSING_DATA_SYSTEM = "https://referral-service.dev/missing-data"
# The SDC/DTR "Task with Questionnaire" pattern: an input naming the form to fill in
SDC_TASK_INPUT = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
FORM_ITEM_EXTENSION = "https://referral-service.dev/StructureDefinition/form-item"
FORM_LINK_EXTENSION = "https://referral-service.dev/StructureDefinition/form-link"


@dataclass(frozen=True)
class FormAsk:
    """The clinic's form, and for each missing item the form's linkIds that would settle it."""

    canonical: str
    items: dict[str, tuple[str, ...]]
    link: str | None = None  # the web form for this referral and round


@dataclass(frozen=True)
class TaskView:
    task_id: str
    referral_id: str
    version_id: int
    last_updated: datetime
    authored_on: datetime
    state: TaskState
    patient_ref: str | None
    decision: Decision | None = None
    appointment_ref: str | None = None
    placer_identifiers: tuple[dict[str, Any], ...] = ()
    placer_inputs: tuple[dict[str, Any], ...] = ()  # references the placer added (new data)
    status_note: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    form: FormAsk | None = None
    # A series: every visit's Appointment (appointment_ref is the first); a repeat course due.
    series_refs: tuple[str, ...] = ()
    repeat_due: tuple[str, str] | None = None  # (earliest, latest) instants
    repeat_refs: tuple[str, ...] = ()  # the repeat course's Appointments, when booked at once


def build_task(view: TaskView) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": view.task_id,
        "meta": {
            "versionId": str(view.version_id),
            "lastUpdated": format_instant(view.last_updated),
        },
        "status": view.state.status,
        "businessStatus": {
            "coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": view.state.business_status}],
            "text": view.state.business_status,
        },
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/{view.referral_id}"},
        "basedOn": [{"reference": f"ServiceRequest/{view.referral_id}"}],
        "authoredOn": format_instant(view.authored_on),
        "lastModified": format_instant(view.last_updated),
    }
    if view.placer_identifiers:
        task["identifier"] = list(view.placer_identifiers)
    if view.patient_ref:
        task["for"] = {"reference": view.patient_ref}
    _add_decision(task, view)
    refs = view.series_refs or ((view.appointment_ref,) if view.appointment_ref else ())
    if refs:
        task["output"] = [
            {
                "type": {"text": "appointment" if len(refs) == 1 else f"visit {k} of {len(refs)}"},
                "valueReference": {"reference": ref},
            }
            for k, ref in enumerate(refs, 1)
        ]
    repeats = len(view.repeat_refs)
    for k, ref in enumerate(view.repeat_refs, 1):
        task.setdefault("output", []).append(
            {
                "type": {"text": repeat_course_text(k, repeats)},
                "valueReference": {"reference": ref},
            }
        )
    if view.repeat_due is not None:
        task.setdefault("output", []).append(
            {
                "type": {"text": "repeat course due"},
                "valuePeriod": {"start": view.repeat_due[0], "end": view.repeat_due[1]},
            }
        )
    return task


def _add_decision(task: dict[str, Any], view: TaskView) -> None:
    notes = [{"text": note} for note in view.notes]
    decision = view.decision
    if decision is not None:
        if view.state.status in {"rejected", "failed", "on-hold"} or (
            view.state.business_status == "needs-review"
        ):
            task["statusReason"] = {
                "coding": [_reason_coding(decision)],
                "text": _summary(decision),
            }
        notes.append({"text": _summary(decision)})
        notes.extend({"text": f"{r.rule}: {r.outcome}: {r.detail}"} for r in decision.reasons)
        if view.state.business_status == "needs-information":
            task["input"] = [_missing_input(item, view.form) for item in decision.missing]
            if view.form is not None and any(view.form.items.values()):
                task["input"].append(_form_input(view.form))
    if view.placer_inputs:
        task["input"] = task.get("input", []) + list(view.placer_inputs)
    if view.status_note:
        notes.append({"text": view.status_note})
    if notes:
        task["note"] = notes


def _reason_coding(decision: Decision) -> dict[str, str]:
    return {"system": REASON_SYSTEM, "code": decision.decision}


def _summary(decision: Decision) -> str:
    deciding = [r for r in decision.reasons if r.outcome != "not-met"]
    lead = deciding[0].detail if deciding else ""
    text = f"decision {decision.decision} (category {decision.category}"
    if decision.protocol:
        text += f", protocol {decision.protocol}"
    return f"{text}, policy {decision.policy_version}). {lead}".strip()


def _missing_input(item: str, form: FormAsk | None = None) -> dict[str, Any]:
    given: dict[str, Any] = {
        "type": {"coding": [{"system": MISSING_DATA_SYSTEM, "code": "missing-data"}], "text": item},
        "valueString": item,
    }
    links = form.items.get(item, ()) if form is not None else ()
    if links:  # the form's items (linkIds) whose answers would settle it
        given["extension"] = [{"url": FORM_ITEM_EXTENSION, "valueString": link} for link in links]
    return given


def _form_input(form: FormAsk) -> dict[str, Any]:
    given: dict[str, Any] = {
        "type": {
            "coding": [{"system": SDC_TASK_INPUT, "code": "questionnaire"}],
            "text": "the clinic's referral form: answer the items listed with each missing item",
        },
        "valueCanonical": form.canonical,
    }
    if form.link:  # a web page of the form, for this referral only, asking what is missing
        given["extension"] = [{"url": FORM_LINK_EXTENSION, "valueUrl": form.link}]
    return given
