"""FHIR search clauses as SQL conditions, one set per searchable table: every parameter in
fhir/search_parameters.py has its condition here (a unit test holds the two lists together)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, or_, select

from referral_service.adapters.db.resources import holding
from referral_service.adapters.db.tables import (
    appointments,
    audit_events,
    referral_identifiers,
    referrals,
    stored_resources,
    tasks,
)
from referral_service.fhir.search import Clause, Criteria, interval, read_date, split_token

# A clause and the sender the search is scoped to (None: staff, every sender) -> a condition.
Condition = Callable[[Clause, str | None, datetime], ColumnElement[bool]]


def conditions(
    builders: dict[str, Condition], criteria: Criteria, sender: str | None, now: datetime
) -> list[ColumnElement[bool]]:
    return [builders[clause.name](clause, sender, now) for clause in criteria.clauses]


# --- the kinds of parameter --------------------------------------------------------------------


def date_on(column: Any) -> Condition:
    def condition(clause: Clause, sender: str | None, now: datetime) -> ColumnElement[bool]:
        return or_(*(_within(column, clause, value, now) for value in clause.values))

    return condition


def _within(column: Any, clause: Clause, raw: str, now: datetime) -> ColumnElement[bool]:
    bounds = interval(read_date(clause.name, raw), now)
    parts = []
    if bounds.start is not None:
        parts.append(column >= bounds.start)
    if bounds.end is not None:
        parts.append(column < bounds.end)
    inside = and_(*parts)
    # A resource without the element never matches, `ne` included.
    return and_(column.is_not(None), not_(inside)) if bounds.outside else inside


def code_of(column: Any) -> Condition:
    """A token compared on its code (status: the system is the element's own value set)."""

    def condition(clause: Clause, sender: str | None, now: datetime) -> ColumnElement[bool]:
        codes = [split_token(value)[1] for value in clause.values]
        return not_(column.in_(codes)) if clause.modifier == "not" else column.in_(codes)

    return condition


def reference_forms(clause: Clause, default_type: str) -> list[str]:
    """Every way a stored reference may spell what a value names: `x`, `Type/x`, or an
    absolute URL ending in `Type/x`; `:Type` says which type a bare id is."""
    forms: list[str] = []
    for value in clause.values:
        parts = value.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) == 1:
            forms += [f"{clause.modifier or default_type}/{value}", value]
        elif clause.modifier is None or parts[-2] == clause.modifier:
            forms += [value, f"{parts[-2]}/{parts[-1]}"]
    return forms


def referenced_ids(clause: Clause, target: str) -> list[str]:
    """The ids of `target` resources a reference value names (`x`, `Target/x`, a URL)."""
    found = []
    for form in reference_forms(clause, target):
        kind, _, resource_id = form.rpartition("/")
        if kind == target:
            found.append(resource_id)
    return found


def reference_in(column: Any, default_type: str) -> Condition:
    def condition(clause: Clause, sender: str | None, now: datetime) -> ColumnElement[bool]:
        return column.in_(reference_forms(clause, default_type))

    return condition


def id_in(column: Any) -> Condition:
    def condition(clause: Clause, sender: str | None, now: datetime) -> ColumnElement[bool]:
        return column.in_(list(clause.values))

    return condition


# --- referrals (ServiceRequest) ----------------------------------------------------------------


def _referral_identifier(clause: Clause, sender: str | None, now: datetime) -> Any:
    alternatives = []
    for value in clause.values:
        system, code = split_token(value)
        matching = select(referral_identifiers.c.referral_id).where(
            referral_identifiers.c.value == code
        )
        if system:
            matching = matching.where(referral_identifiers.c.system == system)
        alternatives.append(referrals.c.id.in_(matching))
    return or_(*alternatives)


def _requester(clause: Clause, sender: str | None, now: datetime) -> Any:
    # Kept in the resource as sent: read with the JSON operators of SQLite and PostgreSQL.
    requester = referrals.c.resource["requester"]["reference"].as_string()
    return requester.in_(reference_forms(clause, "Practitioner"))


SERVICE_REQUEST: dict[str, Condition] = {
    "_id": id_in(referrals.c.id),
    "identifier": _referral_identifier,
    "status": code_of(referrals.c.status),
    "_lastUpdated": date_on(referrals.c.last_updated),
    "patient": reference_in(referrals.c.patient_ref, "Patient"),
    "subject": reference_in(referrals.c.patient_ref, "Patient"),
    "requester": _requester,
    "authored": date_on(referrals.c.authored_on),
}


def _referrals_about(clause: Clause) -> Any:
    return select(referrals.c.id).where(
        referrals.c.patient_ref.in_(reference_forms(clause, "Patient"))
    )


# --- Tasks -------------------------------------------------------------------------------------


def _task_identifier(clause: Clause, sender: str | None, now: datetime) -> Any:
    return or_(*(tasks.c.id.in_(holding("Task", split_token(v), sender)) for v in clause.values))


def _task_referral(clause: Clause, sender: str | None, now: datetime) -> Any:
    return tasks.c.referral_id.in_(referenced_ids(clause, "ServiceRequest"))


def _task_patient(clause: Clause, sender: str | None, now: datetime) -> Any:
    return tasks.c.referral_id.in_(_referrals_about(clause))


TASK: dict[str, Condition] = {
    "_id": id_in(tasks.c.id),
    "identifier": _task_identifier,
    "status": code_of(tasks.c.status),
    "_lastUpdated": date_on(tasks.c.last_updated),
    "focus": _task_referral,
    "based-on": _task_referral,
    "patient": _task_patient,
    "subject": _task_patient,
}


# --- Appointments ------------------------------------------------------------------------------


def _appointment_referral(clause: Clause, sender: str | None, now: datetime) -> Any:
    return appointments.c.referral_id.in_(referenced_ids(clause, "ServiceRequest"))


def _appointment_patient(clause: Clause, sender: str | None, now: datetime) -> Any:
    return appointments.c.referral_id.in_(_referrals_about(clause))


APPOINTMENT: dict[str, Condition] = {
    "_id": id_in(appointments.c.id),
    "status": code_of(appointments.c.status),
    "_lastUpdated": date_on(appointments.c.last_updated),
    "based-on": _appointment_referral,
    "patient": _appointment_patient,
    "date": date_on(appointments.c.start),
}


# --- supporting resources pushed one by one ----------------------------------------------------


def stored(resource_type: str) -> dict[str, Condition]:
    def identifier(clause: Clause, sender: str | None, now: datetime) -> Any:
        return or_(
            *(
                stored_resources.c.id.in_(holding(resource_type, split_token(v), sender))
                for v in clause.values
            )
        )

    def patient(clause: Clause, sender: str | None, now: datetime) -> Any:
        # Stored as `Patient/x` (services/resources.patient_key).
        ids = referenced_ids(clause, "Patient")
        return stored_resources.c.patient_ref.in_([f"Patient/{i}" for i in ids])

    return {
        "_id": id_in(stored_resources.c.id),
        "identifier": identifier,
        "_lastUpdated": date_on(stored_resources.c.last_updated),
        "patient": patient,
        "subject": patient,
    }


# --- the audit trail (AuditEvent, staff only) --------------------------------------------------


def _audit_entity(clause: Clause, sender: str | None, now: datetime) -> Any:
    # Recorded as `Type/id`: a full URL names it after `/fhir/`.
    return audit_events.c.entity.in_([v.split("/fhir/", 1)[-1] for v in clause.values])


def _audit_agent(clause: Clause, sender: str | None, now: datetime) -> Any:
    return audit_events.c.agent.in_([split_token(v)[1] for v in clause.values])


AUDIT_EVENT: dict[str, Condition] = {
    "date": date_on(audit_events.c.recorded),
    "entity": _audit_entity,
    "agent": _audit_agent,
}
