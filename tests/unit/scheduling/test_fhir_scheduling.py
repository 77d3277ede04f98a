"""Slot / Schedule / Appointment JSON <-> scheduling values."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from referral_service.fhir import scheduling as fs


def slot(start: str = "2026-03-02T13:00:00Z", end: str = "2026-03-02T13:15:00+00:00") -> dict:
    return {
        "resourceType": "Slot",
        "id": "s1",
        "schedule": {"reference": "Schedule/sch"},
        "status": "free",
        "start": start,
        "end": end,
    }


def test_slot_parses_with_offsets() -> None:
    free = fs.slot_from_fhir(slot(start="2026-03-02T08:00:00-05:00"))
    assert free.schedule_id == "sch"
    assert free.start == datetime(2026, 3, 2, 13, tzinfo=UTC)
    assert free.end - free.start == timedelta(minutes=15)


@pytest.mark.parametrize("bad", ["2026-03-02T13:00:00", "2026-03-02", None, "soon"])
def test_offset_less_or_bad_times_are_rejected_clearly(bad: object) -> None:
    with pytest.raises(fs.FhirTimeError, match="Slot/s1 start"):
        fs.slot_from_fhir(slot(start=bad))  # type: ignore[arg-type]


def test_absolute_schedule_references() -> None:
    resource = slot()
    resource["schedule"] = {"reference": "https://ehr.example/fhir/Schedule/abc/_history/3"}
    assert fs.slot_from_fhir(resource).schedule_id == "abc"


def test_infusion_schedules_and_their_chair() -> None:
    schedule = {
        "resourceType": "Schedule",
        "id": "x",
        "serviceType": [{"coding": [{"system": "urn:other", "code": "IV-INFUSION"}]}],
        "actor": [{"reference": "Practitioner/p"}, {"reference": "Location/chair"}],
    }
    assert fs.is_infusion_schedule(schedule)
    assert fs.schedule_chair(schedule) == {"reference": "Location/chair"}
    assert not fs.is_infusion_schedule({"serviceType": [{"text": "MRI"}]})


def test_built_appointment() -> None:
    start = datetime(2026, 3, 2, 13, tzinfo=UTC)
    appointment = fs.build_appointment(
        referral_id="ref-1",
        service_request_ref="https://svc/fhir/ServiceRequest/ref-1",
        patient_ref="Patient/p",
        chair={"reference": "Location/c"},
        start=start,
        end=start + timedelta(hours=2),
        protocol="dhe",
        slot_ids=("a", "b"),
    )
    assert appointment["status"] == "booked"
    assert appointment["identifier"] == [{"system": fs.APPOINTMENT_SYSTEM, "value": "ref-1"}]
    assert appointment["basedOn"] == [{"reference": "https://svc/fhir/ServiceRequest/ref-1"}]
    assert [p["actor"]["reference"] for p in appointment["participant"]] == [
        "Patient/p",
        "Location/c",
    ]
    assert appointment["slot"] == [{"reference": "Slot/a"}, {"reference": "Slot/b"}]
    assert appointment["minutesDuration"] == 120
    assert (appointment["start"], appointment["end"]) == (
        "2026-03-02T13:00:00Z",
        "2026-03-02T15:00:00Z",
    )
    times = fs.appointment_times(appointment)
    assert times.slot_ids == ("a", "b") and times.start == start
    assert fs.appointment_chair(appointment) == "Location/c"
    assert fs.appointment_query("ref-1") == f"identifier={fs.APPOINTMENT_SYSTEM}|ref-1"


def test_slot_hold_marker_round_trip() -> None:
    held = fs.held_slot(slot(), "Appointment/1")
    assert held["status"] == "busy" and fs.slot_holder(held) == "Appointment/1"
    freed = fs.freed_slot(held)
    assert freed["status"] == "free" and fs.slot_holder(freed) is None and "extension" not in freed


def test_holding_and_freeing_a_slot_leave_the_searched_one_as_it_was() -> None:
    """The booking transaction PUTs copies: the Slot from the search (kept for a retry's plan)
    is never changed through them."""
    searched = {
        "resourceType": "Slot",
        "id": "s1",
        "status": "free",
        "meta": {"versionId": "3"},
        "schedule": {"reference": "Schedule/chair-1"},
        "extension": [{"url": "https://example.org/other", "valueString": "kept"}],
        "start": "2026-03-02T13:00:00Z",
        "end": "2026-03-02T13:15:00Z",
    }
    before = copy.deepcopy(searched)
    held = fs.held_slot(searched, "Appointment/a1")
    assert held["status"] == "busy" and fs.slot_holder(held) == "Appointment/a1"
    assert held["extension"][0] == before["extension"][0]
    held["meta"]["versionId"] = "4"
    held["schedule"]["reference"] = "Schedule/other"
    freed = fs.freed_slot(held)
    assert freed["status"] == "free" and fs.slot_holder(freed) is None
    assert freed["extension"] == before["extension"]
    freed["extension"][0]["valueString"] = "changed"
    assert searched == before
    assert held["extension"][0]["valueString"] == "kept"
