"""A series in the Task (every visit's Appointment, the repeat course due) and the chair day's
load chart (census and nurse phases per cell against what the nurses allow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from referral_service.api.console.load_chart import load_chart
from referral_service.domain import lifecycle
from referral_service.domain.scheduling.clinic import clinic_from_dict
from referral_service.fhir.task import TaskView, build_task

AT = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def view(**extra) -> TaskView:
    return TaskView(
        task_id="t1",
        referral_id="r1",
        version_id=2,
        last_updated=AT,
        authored_on=AT,
        state=lifecycle.BOOKED,
        patient_ref="Patient/p1",
        **extra,
    )


def test_task_output_lists_every_visit_then_the_repeat_due() -> None:
    task = build_task(
        view(
            appointment_ref="Appointment/a1",
            series_refs=("Appointment/a1", "Appointment/a2", "Appointment/a3"),
            repeat_due=("2027-03-01T05:00:00Z", "2027-03-16T05:00:00Z"),
        )
    )
    outputs = task["output"]
    assert [o["type"]["text"] for o in outputs] == [
        "visit 1 of 3",
        "visit 2 of 3",
        "visit 3 of 3",
        "repeat course due",
    ]
    assert [o["valueReference"]["reference"] for o in outputs[:3]] == [
        "Appointment/a1",
        "Appointment/a2",
        "Appointment/a3",
    ]
    assert outputs[3]["valuePeriod"] == {
        "start": "2027-03-01T05:00:00Z",
        "end": "2027-03-16T05:00:00Z",
    }


def test_a_single_visit_keeps_its_one_appointment_output() -> None:
    task = build_task(view(appointment_ref="Appointment/a1"))
    assert task["output"] == [
        {"type": {"text": "appointment"}, "valueReference": {"reference": "Appointment/a1"}}
    ]


def test_load_chart_counts_census_and_nurse_phases_per_cell() -> None:
    clinic = clinic_from_dict(
        {
            "time_zone": "UTC",
            "chairs": [{"id": "c1", "name": "1"}, {"id": "c2", "name": "2"}],
            "opening_hours": {"monday": {"open": "09:00", "close": "12:00"}},
            "nurses": {
                "patients_per_nurse": 2,
                "bands": [{"days": ["monday"], "start": "09:00", "end": "12:00", "nurses": 1}],
            },
            "protocols": {
                "standard-infusion": {
                    "minutes": 60,
                    "nurse_start_minutes": 15,
                    "nurse_end_minutes": 15,
                }
            },
        }
    )
    opens = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday
    infusions = [
        SimpleNamespace(chair_id="c1", protocol="standard-infusion", start=opens, end=None),
        SimpleNamespace(
            chair_id="c2",
            protocol="standard-infusion",
            start=opens + timedelta(minutes=30),
            end=None,
        ),
    ]
    chart = load_chart(clinic, infusions, opens, opens + timedelta(hours=3), 1.0)
    assert len(chart.steps) == 12  # 15-minute cells over three hours
    assert [s.census for s in chart.steps[:7]] == [1, 1, 2, 2, 1, 1, 0]
    assert [s.phases for s in chart.steps[:7]] == [1, 0, 1, 1, 0, 1, 0]
    assert chart.peak_census == 2 and chart.peak_phases == 1
    assert chart.tallest == 2  # the capacity line: 1 nurse x 2 patients
    assert chart.capacity_points and chart.nurses_points
