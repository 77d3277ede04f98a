"""A repeat course booked at once: the Task's output names its Appointment the repeat course
(after the first course's), and the chair day labels it so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from referral_service.domain import lifecycle
from referral_service.fhir.task import TaskView, build_task
from referral_service.services.staff.console import Infusion

AT = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def booked_task(
    series_refs: tuple[str, ...] = (), repeat_refs: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A booked referral's Task, its first visit Appointment/a1."""
    return build_task(
        TaskView(
            task_id="t1",
            referral_id="r1",
            version_id=2,
            last_updated=AT,
            authored_on=AT,
            state=lifecycle.BOOKED,
            patient_ref="Patient/p1",
            appointment_ref="Appointment/a1",
            series_refs=series_refs,
            repeat_refs=repeat_refs,
        )
    )


def test_task_output_lists_the_visit_then_the_booked_repeat() -> None:
    task = booked_task(repeat_refs=("Appointment/a2",))
    assert task["output"] == [
        {"type": {"text": "appointment"}, "valueReference": {"reference": "Appointment/a1"}},
        {"type": {"text": "repeat course"}, "valueReference": {"reference": "Appointment/a2"}},
    ]


def test_the_chair_day_labels_a_booked_repeat_apart_from_series_visits() -> None:
    def infusion(visit: int, visits: int) -> Infusion:
        return Infusion("r1", "c1", "mab", AT, AT, visit, visits)

    assert (infusion(2, 1).label, infusion(2, 1).series) == ("mab repeat", "repeat course")
    assert (infusion(2, 3).label, infusion(2, 3).series) == ("mab 2/3", "visit 2 of 3")
    assert (infusion(1, 1).label, infusion(1, 1).series) == ("mab", "")


def test_task_output_lists_every_visit_of_a_booked_repeat_series() -> None:
    task = booked_task(
        series_refs=("Appointment/a1", "Appointment/a2"),
        repeat_refs=("Appointment/a3", "Appointment/a4"),
    )
    assert [(o["type"]["text"], o["valueReference"]["reference"]) for o in task["output"]] == [
        ("visit 1 of 2", "Appointment/a1"),
        ("visit 2 of 2", "Appointment/a2"),
        ("repeat course, visit 1 of 2", "Appointment/a3"),
        ("repeat course, visit 2 of 2", "Appointment/a4"),
    ]


def test_the_chair_day_numbers_the_visits_of_a_booked_repeat_series() -> None:
    repeat = [Infusion("r1", "c1", "dhe", AT, AT, visit, 3) for visit in (4, 5, 6)]
    assert [(i.label, i.series) for i in repeat] == [
        ("dhe repeat 1/3", "repeat course, visit 1 of 3"),
        ("dhe repeat 2/3", "repeat course, visit 2 of 3"),
        ("dhe repeat 3/3", "repeat course, visit 3 of 3"),
    ]
