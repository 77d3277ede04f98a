"""The search parameters each resource type supports, with their modifiers: what searches
apply and what the CapabilityStatement lists are read from here, so the two cannot differ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from referral_service.fhir.search import DATE_PREFIXES, SearchParameter

# A reference parameter takes `:Type` for each type it may point at (search.html, modifiers).
REQUESTER_TYPES = ("Practitioner", "PractitionerRole", "Organization", "Patient", "Device")

_ID = SearchParameter("_id", "token", documentation="the resource id; a comma list is any of them")
_LAST_UPDATED = SearchParameter(
    "_lastUpdated",
    "date",
    documentation="meta.lastUpdated; every prefix; a value without an offset is UTC",
)
_IDENTIFIER = SearchParameter("identifier", "token", documentation="system|value, |value or value")
_STATUS = SearchParameter("status", "token", ("not",))


def _reference(name: str, targets: tuple[str, ...], documentation: str) -> SearchParameter:
    return SearchParameter(name, "reference", targets, documentation)


SERVICE_REQUEST = {
    p.name: p
    for p in (
        _ID,
        _IDENTIFIER,
        _STATUS,
        _LAST_UPDATED,
        _reference("patient", ("Patient",), "ServiceRequest.subject when a Patient"),
        _reference("subject", ("Patient",), "ServiceRequest.subject (a Patient)"),
        _reference("requester", REQUESTER_TYPES, "ServiceRequest.requester"),
        SearchParameter("authored", "date", (), "ServiceRequest.authoredOn; every prefix"),
    )
}

TASK = {
    p.name: p
    for p in (
        _ID,
        _IDENTIFIER,
        _STATUS,
        _LAST_UPDATED,
        _reference("focus", ("ServiceRequest",), "Task.focus: the referral"),
        _reference("based-on", ("ServiceRequest",), "Task.basedOn: the referral"),
        _reference("patient", ("Patient",), "Task.for when a Patient"),
        _reference("subject", ("Patient",), "Task.for (a Patient)"),
    )
}

APPOINTMENT = {
    p.name: p
    for p in (
        _ID,
        _STATUS,
        _LAST_UPDATED,
        _reference("based-on", ("ServiceRequest",), "Appointment.basedOn: the referral"),
        _reference("patient", ("Patient",), "the referral's patient (a participant)"),
        SearchParameter("date", "date", (), "Appointment.start; every prefix"),
    )
}


def pushed(patient_parameters: tuple[str, ...]) -> dict[str, SearchParameter]:
    """A supporting resource type: by id, identifier, last update and, where FHIR defines
    them for the type, `patient`/`subject`."""
    base = [_ID, _IDENTIFIER, _LAST_UPDATED]
    about = [
        _reference(name, ("Patient",), "the Patient it is about") for name in patient_parameters
    ]
    return {p.name: p for p in base + about}


AUDIT_EVENT = {
    p.name: p
    for p in (
        SearchParameter("date", "date", (), "AuditEvent.recorded; every prefix"),
        SearchParameter("entity", "reference", (), "Type/id of what was acted on"),
        SearchParameter("agent", "reference", (), "the client id (system|value or value)"),
    )
}


PAGING = [
    {"name": "_count", "type": "number", "documentation": "page size, at most 100"},
    {"name": "_offset", "type": "number", "documentation": "matches skipped (paging links)"},
]


def capability_params(parameters: Mapping[str, SearchParameter]) -> list[dict[str, Any]]:
    """CapabilityStatement.rest.resource.searchParam: R4 has no element for modifiers or
    prefixes, so each documentation names them."""
    listed = []
    for parameter in parameters.values():
        notes = [parameter.documentation] if parameter.documentation else []
        if parameter.modifiers:
            notes.append("modifiers: " + ", ".join(f":{m}" for m in parameter.modifiers))
        if parameter.kind == "date":
            notes.append("prefixes: " + " ".join(DATE_PREFIXES))
        entry: dict[str, Any] = {"name": parameter.name, "type": parameter.kind}
        if notes:
            entry["documentation"] = "; ".join(notes)
        listed.append(entry)
    return listed + PAGING
