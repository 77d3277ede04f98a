"""What evaluation may use of the resources a sender pushed: those about the referral's patient
or filed under the referral, those its Task names, and the sender's own to resolve references."""

from __future__ import annotations

from typing import Any

from referral_service.adapters.db.referrals import TaskRow
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.fhir.facts import Resolver
from referral_service.services.dependencies import Dependencies
from referral_service.services.intake.resources import relative_reference, render


def supporting_for(
    uow: SqlUnitOfWork,
    sender: str,
    referral_id: str,
    patient_ref: str | None,
    sent: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """What came with a referral plus the sender's stored resources about its patient and the
    answers filed under the referral itself, each once (the stored, current version wins), as
    the Bundle path gathers them; read in the caller's unit of work."""
    found = relative_reference(patient_ref)
    # A resource without an id keeps a key of its own: it can never be a stored one.
    merged = {
        f"{r.get('resourceType')}/{r['id']}" if r.get("id") else f"#{index}": r
        for index, r in enumerate(sent)
        if isinstance(r, dict)
    }
    keys = [f"ServiceRequest/{referral_id}"]
    if found and found[0] == "Patient":
        keys.append(f"Patient/{found[1]}")
    rows = [row for key in keys for row in uow.resources.about_patient(sender, key)]
    merged.update({f"{row.resource_type}/{row.id}": render(row) for row in rows})
    return list(merged.values())


def named_by_task(uow: SqlUnitOfWork, sender: str, task: TaskRow | None) -> list[dict[str, Any]]:
    """The sender's resources its Task's `input` points at (new data given through the Task,
    whether or not they name the patient as the referral does); `task` as the caller read it."""
    named = [
        found
        for item in (task.resource.get("input") or [] if task else [])
        if isinstance(item, dict)
        and (found := relative_reference((item.get("valueReference") or {}).get("reference")))
    ]
    stored = [uow.resources.get(kind, resource_id) for kind, resource_id in named]
    return [render(row) for row in stored if row is not None and row.sender == sender]


def own_resolver(runtime: Dependencies, sender: str, fallback: Resolver | None) -> Resolver:
    """Resolves `Type/id` to the sender's own stored resource first; another sender's is
    unresolvable here (missing data, not a leak), so it falls through to `fallback`."""

    def resolve(reference: str) -> dict[str, Any] | None:
        found = relative_reference(reference)
        if found is not None:
            with runtime.unit_of_work(read_only=True) as uow:
                stored = uow.resources.get(found[0], found[1])
            if stored is not None and stored.sender == sender:
                return render(stored)
        return fallback(reference) if fallback is not None else None

    return resolve
