"""FHIR scheduling resources (Slot, Schedule, Appointment) <-> scheduling domain values."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.domain.scheduling.slots import FreeSlot
from referral_service.fhir.instant import format_instant

Resource = dict[str, Any]
APPOINTMENT_SYSTEM = "https://referral-service.dev/appointment"
CHAIR_SYSTEM = "https://referral-service.dev/chair"
SCHEDULE_SYSTEM = "https://referral-service.dev/chair-schedule"
SLOT_SYSTEM = "https://referral-service.dev/chair-slot"
PROTOCOL_SYSTEM = "https://referral-service.dev/protocol"
SERVICE_TYPE_SYSTEM = "https://referral-service.dev/service-type"
INFUSION = {"system": SERVICE_TYPE_SYSTEM, "code": "infusion", "display": "Headache infusion"}
# Which Appointment holds a busy Slot: lets a booker tell "mine, from an earlier attempt"
# from "taken by someone else" without guessing from Appointment searches.
SLOT_HOLDER_URL = "https://referral-service.dev/fhir/StructureDefinition/slot-held-by"


class FhirSchedulingError(ValueError):
    """A Slot, Schedule or Appointment from the EHR that we cannot use (the message says why)."""


class FhirTimeError(FhirSchedulingError):
    """A FHIR time we cannot use: missing, unparseable, or without a UTC offset."""


def parse_instant(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or "T" not in value:
        raise FhirTimeError(f"{what} is not a FHIR instant: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FhirTimeError(f"{what} is not a FHIR instant: {value!r}") from None
    if parsed.tzinfo is None:
        raise FhirTimeError(f"{what} has no UTC offset: {value!r}")
    return parsed


def fhir_instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise FhirTimeError(f"naive datetime {value.isoformat()}")
    return format_instant(value, timespec="seconds")


def reference_id(reference: str | None, resource_type: str) -> str | None:
    """ "Schedule/abc" or "http://ehr/fhir/Schedule/abc/_history/2" -> "abc"."""
    if not reference:
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    return None


def slot_from_fhir(slot: Resource, known: dict[Any, Any] | None = None) -> FreeSlot:
    """`known`: what earlier Slots of the same answer gave (their times and Schedule
    references repeat across chairs), so a search's Slots are read in one pass."""
    known = {} if known is None else known
    reference = (slot.get("schedule") or {}).get("reference")
    schedule = known.get(("schedule", reference))
    if schedule is None:
        schedule = known[("schedule", reference)] = reference_id(reference, "Schedule")
    if not schedule:
        raise FhirSchedulingError(f"Slot/{slot.get('id')} has no Schedule reference")
    return FreeSlot(
        id=str(slot["id"]),
        schedule_id=schedule,
        start=_known_instant(slot, "start", known),
        end=_known_instant(slot, "end", known),
    )


def _known_instant(slot: Resource, field: str, known: dict[Any, Any]) -> datetime:
    """Most Slots repeat an instant an earlier one gave: each parsed once (its error label built
    only then)."""
    value = slot.get(field)
    instant = known.get(value) if isinstance(value, str) else None
    if instant is None:
        instant = parse_instant(value, f"Slot/{slot.get('id')} {field}")
        if isinstance(value, str):
            known[value] = instant
    return instant


def is_infusion_schedule(schedule: Resource) -> bool:
    for concept in schedule.get("serviceType", []):
        codes = [c.get("code", "") for c in concept.get("coding", [])] + [concept.get("text", "")]
        if any("infusion" in code.lower() for code in codes if code):
            return True
    return False


def schedule_chair(schedule: Resource) -> Resource:
    """The chair a Schedule books: its Location or Device actor (else its first actor)."""
    actors = [a for a in schedule.get("actor", []) if a.get("reference")]
    for actor in actors:
        if actor["reference"].split("/")[-2:][0] in ("Location", "Device"):
            return {"reference": actor["reference"], **_display(actor)}
    if not actors:
        raise FhirSchedulingError(f"Schedule/{schedule.get('id')} has no actor")
    return {"reference": actors[0]["reference"], **_display(actors[0])}


def _display(actor: Resource) -> Resource:
    return {"display": actor["display"]} if actor.get("display") else {}


def appointment_chair(appointment: Resource) -> str | None:
    """The chair an Appointment books: its first Location or Device participant."""
    for participant in appointment.get("participant", []):
        reference = str((participant.get("actor") or {}).get("reference", ""))
        kind = reference.split("/")[-2] if reference.count("/") >= 1 else ""
        if kind in ("Location", "Device"):
            return reference
    return None


def appointment_token(referral_id: str) -> str:
    """Our Appointment identifier as a FHIR token search value (system|value)."""
    return f"{APPOINTMENT_SYSTEM}|{referral_id}"


def appointment_query(referral_id: str) -> str:
    """The If-None-Exist criterion finding our Appointment for a referral."""
    return f"identifier={appointment_token(referral_id)}"


@dataclass(frozen=True)
class AppointmentTimes:
    start: datetime
    end: datetime
    slot_ids: tuple[str, ...]


def appointment_slot_ids(appointment: Resource) -> tuple[str, ...]:
    return tuple(
        sid
        for ref in appointment.get("slot", [])
        if (sid := reference_id(ref.get("reference"), "Slot")) is not None
    )


def appointment_times(appointment: Resource) -> AppointmentTimes:
    label = f"Appointment/{appointment.get('id')}"
    slots = appointment_slot_ids(appointment)
    return AppointmentTimes(
        start=parse_instant(appointment.get("start"), f"{label} start"),
        end=parse_instant(appointment.get("end"), f"{label} end"),
        slot_ids=slots,
    )


def build_appointment(
    *,
    referral_id: str,
    service_request_ref: str,
    patient_ref: str | None,
    chair: Resource,
    start: datetime,
    end: datetime,
    protocol: str,
    slot_ids: tuple[str, ...] = (),
    status: str = "booked",
    patient: Resource | None = None,
    visit: tuple[int, int] | None = None,
) -> Resource:
    """The Appointment for one referral. `chair` is a Reference (literal or logical). A given
    `patient` is contained, so the participant never points at what the reader cannot resolve."""
    if patient is not None:
        patient_ref = "#patient"
    actors = ([{"reference": patient_ref}] if patient_ref else []) + [chair]
    participants = [{"actor": a, "required": "required", "status": "accepted"} for a in actors]
    resource: Resource = {
        "resourceType": "Appointment",
        "identifier": [{"system": APPOINTMENT_SYSTEM, "value": referral_id}]
        + ([visit_identifier(referral_id, visit[0])] if visit else []),
        "status": status,
        "serviceType": [
            {"coding": [INFUSION]},
            {"coding": [{"system": PROTOCOL_SYSTEM, "code": protocol}]},
        ],
        "start": fhir_instant(start),
        "end": fhir_instant(end),
        "minutesDuration": int((end - start).total_seconds() // 60),
        "basedOn": [{"reference": service_request_ref}],
        "participant": participants,
    }
    if slot_ids:
        resource["slot"] = [{"reference": f"Slot/{sid}"} for sid in slot_ids]
    if patient is not None:
        resource["contained"] = [{**patient, "id": "patient"}]
    if visit is not None and visit[1] > 1:
        resource["description"] = f"visit {visit[0]} of {visit[1]}"
    return resource


VISIT_SYSTEM = "https://referral-service.dev/appointment-visit"


def visit_identifier(referral_id: str, visit: int) -> Resource:
    """One visit of a referral's series (its Appointments share the referral's identifier)."""
    return {"system": VISIT_SYSTEM, "value": f"{referral_id}/{visit}"}


def visit_query(referral_id: str, visit: int) -> str:
    """The If-None-Exist criterion of one visit's Appointment."""
    return f"identifier={VISIT_SYSTEM}|{referral_id}/{visit}"


def appointment_visit(appointment: Resource) -> int:
    for identifier in appointment.get("identifier", []):
        if identifier.get("system") == VISIT_SYSTEM:
            return int(str(identifier.get("value", "")).rsplit("/", 1)[-1] or 1)
    return 1


def due_appointment(
    *,
    referral_id: str,
    service_request_ref: str,
    patient_ref: str | None,
    protocol: str,
    earliest: datetime,
    latest: datetime,
) -> Resource:
    """A repeat course recorded as due: a `proposed` Appointment with its requestedPeriod."""
    resource: Resource = {
        "resourceType": "Appointment",
        "identifier": [{"system": APPOINTMENT_SYSTEM, "value": referral_id}],
        "status": "proposed",
        "description": "repeat course due",
        "serviceType": [
            {"coding": [INFUSION]},
            {"coding": [{"system": PROTOCOL_SYSTEM, "code": protocol}]},
        ],
        "requestedPeriod": [{"start": fhir_instant(earliest), "end": fhir_instant(latest)}],
        "basedOn": [{"reference": service_request_ref}],
        "participant": [{"actor": {"reference": patient_ref}, "status": "needs-action"}]
        if patient_ref and not patient_ref.startswith("#")
        else [{"type": [{"text": "patient"}], "status": "needs-action"}],
    }
    return resource


REPEAT_COURSE = "repeat course"  # a booked repeat's description ("repeat course due": not booked)


def repeat_course_text(k: int, n: int) -> str:
    """Visit k of a repeat course of n: "repeat course", or "repeat course, visit k of n" for a
    repeated series (the Appointment's description, its Task output, the console)."""
    return REPEAT_COURSE if n <= 1 else f"{REPEAT_COURSE}, visit {k} of {n}"


def as_repeat(appointment: Resource, number: tuple[int, int] = (1, 1)) -> Resource:
    """A visit's Appointment marked as the repeat course (not a visit of the first series)."""
    return {**appointment, "description": repeat_course_text(*number)}


def is_repeat(appointment: Resource) -> bool:
    description = str(appointment.get("description", ""))
    return description == REPEAT_COURSE or description.startswith(f"{REPEAT_COURSE}, visit ")


def with_status(resource: Resource, status: str) -> Resource:
    changed = copy.deepcopy(resource)
    changed["status"] = status
    return changed


def slot_holder(slot: Resource) -> str | None:
    for extension in slot.get("extension", []):
        if extension.get("url") == SLOT_HOLDER_URL:
            return (extension.get("valueReference") or {}).get("reference")
    return None


def held_slot(slot: Resource, appointment_ref: str) -> Resource:
    """The Slot marked busy for `appointment_ref`."""
    changed = freed_slot(slot)
    changed["status"] = "busy"
    changed.setdefault("extension", []).append(
        {"url": SLOT_HOLDER_URL, "valueReference": {"reference": appointment_ref}}
    )
    return changed


def freed_slot(slot: Resource) -> Resource:
    changed = _json_copy(slot)
    changed["status"] = "free"
    kept = [e for e in changed.get("extension", []) if e.get("url") != SLOT_HOLDER_URL]
    if kept:
        changed["extension"] = kept
    else:
        changed.pop("extension", None)
    return changed


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): a booking copies each of its Slots,
    and copy.deepcopy's generality costs three times as much."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value
