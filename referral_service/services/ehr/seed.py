"""Demo data on an EHR: the clinic's chairs as Location + Schedule, and free Slots (idempotent).

Every resource carries an identifier and is created conditionally on it, so running the seed
twice (or after a partial failure) adds only what is missing, on SEKMET, HAPI or any R4 server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from referral_service.adapters.ehr.client import FhirClient
from referral_service.domain.scheduling.clinic import Chair, Clinic
from referral_service.fhir import scheduling as fs

Resource = dict[str, Any]
BATCH_SIZE = 200  # Slots per transaction: small enough for any server's request limits


def demo_chairs(clinic: Clinic, count: int) -> list[Chair]:
    """The clinic's chairs, then numbered extra ones if more are asked for."""
    chairs = list(clinic.chairs[:count])
    for number in range(len(chairs) + 1, count + 1):
        chairs.append(Chair(f"chair-{number}", f"Infusion chair {number}"))
    return chairs


def _conditional(system: str, value: str) -> str:
    return f"identifier={system}|{value}"


def _location(chair: Chair) -> Resource:
    return {
        "resourceType": "Location",
        "identifier": [{"system": fs.CHAIR_SYSTEM, "value": chair.id}],
        "status": "active",
        "name": chair.name,
        "mode": "instance",
    }


def _schedule(chair: Chair, location: Resource) -> Resource:
    return {
        "resourceType": "Schedule",
        "identifier": [{"system": fs.SCHEDULE_SYSTEM, "value": chair.id}],
        "active": True,
        "serviceType": [{"coding": [fs.INFUSION], "text": "Headache infusion"}],
        "actor": [{"reference": f"Location/{location['id']}", "display": chair.name}],
    }


def _cell_starts(clinic: Clinic, start: date, days: int) -> Iterator[datetime]:
    for offset in range(days):
        opening = clinic.opening_on(start + timedelta(days=offset))
        if opening is None:
            continue
        at, closes = opening
        while at + clinic.cell <= closes:
            yield at
            at += clinic.cell


def _slot_entry(chair: Chair, schedule: Resource, at: datetime, cell: timedelta) -> Resource:
    identifier = f"{chair.id}/{fs.fhir_instant(at)}"
    slot = {
        "resourceType": "Slot",
        "identifier": [{"system": fs.SLOT_SYSTEM, "value": identifier}],
        "serviceType": [{"coding": [fs.INFUSION]}],
        "schedule": {"reference": f"Schedule/{schedule['id']}"},
        "status": "free",
        "start": fs.fhir_instant(at),
        "end": fs.fhir_instant(at + cell),
    }
    request = {
        "method": "POST",
        "url": "Slot",
        "ifNoneExist": _conditional(fs.SLOT_SYSTEM, identifier),
    }
    return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": slot, "request": request}


def _post_slots(client: FhirClient, entries: list[Resource]) -> tuple[int, int]:
    """(created, already there) for a list of conditional Slot creates."""
    created = existing = 0
    for first in range(0, len(entries), BATCH_SIZE):
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": entries[first : first + BATCH_SIZE],
        }
        # Every entry is a conditional create, so repeating the whole Bundle is harmless.
        response = client.transaction(bundle, repeatable=True)
        for entry in response.get("entry", []):
            status = str((entry.get("response") or {}).get("status", ""))
            created += status.startswith("201")
            existing += status.startswith("200")
    return created, existing


def seed_demo(client: FhirClient, clinic: Clinic, *, days: int, chairs: int, start: date) -> dict:
    """Create `chairs` chairs with `days` days of free Slots from `start`; report what was done."""
    report: dict[str, Any] = {
        "locations": [],
        "schedules": [],
        "slots_created": 0,
        "slots_existing": 0,
    }
    for chair in demo_chairs(clinic, chairs):
        location = client.create(
            _location(chair), if_none_exist=_conditional(fs.CHAIR_SYSTEM, chair.id)
        )
        schedule = client.create(
            _schedule(chair, location), if_none_exist=_conditional(fs.SCHEDULE_SYSTEM, chair.id)
        )
        entries = [
            _slot_entry(chair, schedule, at, clinic.cell)
            for at in _cell_starts(clinic, start, days)
        ]
        created, existing = _post_slots(client, entries)
        report["locations"].append(str(location["id"]))
        report["schedules"].append(str(schedule["id"]))
        report["slots_created"] += created
        report["slots_existing"] += existing
    return report
