"""The clinic file's nurses and treatment courses: the example clinic, defaults, and each error."""

from __future__ import annotations

from datetime import time

import pytest

from referral_service.domain.scheduling.clinic import ClinicError, clinic_from_dict, load_clinic
from referral_service.domain.scheduling.nursing import (
    CONSECUTIVE_OPEN_DAYS,
    EVERY_N_DAYS,
    Series,
    visits_in_a_week,
)

BAND = {"days": ["monday"], "start": "08:00", "end": "12:00", "nurses": 2}


def minimal(**overrides: object) -> dict:
    data: dict = {
        "time_zone": "Europe/London",
        "chairs": [{"id": "a", "name": "Chair A"}],
        "opening_hours": {"monday": {"open": "08:00", "close": "12:00"}},
    }
    data.update(overrides)
    return data


def with_protocol(**course: object) -> dict:
    return minimal(protocols={"dhe": {"minutes": 120, **course}})


def test_example_clinic_has_nurses_series_repeat_and_dose_cap() -> None:
    clinic = load_clinic(None)
    assert clinic.staffing is not None
    assert clinic.staffing.patients_per_nurse == 3
    assert clinic.staffing.nurses_at(0, time(8)) == 2
    assert clinic.staffing.nurses_at(0, time(18)) == 0  # the band ends as the clinic closes
    assert clinic.staffing.nurses_at(5, time(12, 45)) == 1
    assert clinic.staffing.nurses_at(6, time(10)) == 0
    dhe = clinic.protocol("dhe").course
    assert (dhe.nurse_start_minutes, dhe.nurse_end_minutes) == (30, 15)
    assert dhe.series == Series(3, CONSECUTIVE_OPEN_DAYS, 1)
    assert dhe.dosing is not None and dhe.dosing.max_mg_per_week == 6
    repeat = clinic.protocol("eptinezumab").course.repeat
    assert repeat is not None and (repeat.every_days, repeat.tolerance_days) == (84, 7)


def test_a_file_without_the_new_keys_keeps_its_old_meaning() -> None:
    clinic = clinic_from_dict(minimal(protocols={"dhe": {"minutes": 120}}))
    assert clinic.staffing is None  # nurses not modelled: chairs alone limit, as before
    course = clinic.protocol("dhe").course
    assert course.series.visits == 1 and course.repeat is None and course.dosing is None
    assert (course.nurse_start_minutes, course.nurse_end_minutes) == (15, 15)


def test_built_in_protocols_when_the_file_lists_none() -> None:
    clinic = clinic_from_dict(minimal())
    assert clinic.protocol("dhe").course.series.visits == 3
    assert clinic.protocol("eptinezumab").course.repeat is not None
    assert clinic.protocol("standard-infusion").course.series.visits == 1


def test_every_n_days_series_and_bands_over_several_days() -> None:
    clinic = clinic_from_dict(
        minimal(
            nurses={
                "patients_per_nurse": 4,
                "bands": [
                    {**BAND, "days": ["monday", "tuesday"], "end": "10:00"},
                    {**BAND, "days": ["monday"], "start": "10:00", "nurses": 1},
                ],
            },
            protocols={
                "x": {
                    "minutes": 60,
                    "series": {"visits": 2, "spacing": EVERY_N_DAYS, "every_days": 7},
                }
            },
        )
    )
    assert clinic.staffing is not None
    assert clinic.staffing.nurses_at(0, time(9, 59)) == 2
    assert clinic.staffing.nurses_at(0, time(10)) == 1
    assert clinic.staffing.nurses_at(1, time(10)) == 0
    assert clinic.protocol("x").course.series == Series(2, EVERY_N_DAYS, 7)


@pytest.mark.parametrize(
    ("series", "most"),
    [
        (Series(3, CONSECUTIVE_OPEN_DAYS), 3),
        (Series(10, CONSECUTIVE_OPEN_DAYS), 7),
        (Series(5, EVERY_N_DAYS, 2), 4),
        (Series(5, EVERY_N_DAYS, 7), 1),
    ],
)
def test_visits_that_can_fall_within_a_week(series: Series, most: int) -> None:
    assert visits_in_a_week(series) == most


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (minimal(nurses={"bands": []}), "nurses.bands"),
        (minimal(nurses={"bands": [{**BAND, "days": ["funday"]}]}), "nurses.bands.0.days.0"),
        (minimal(nurses={"bands": [{**BAND, "start": "8am"}]}), "nurses.bands.0.start"),
        (minimal(nurses={"bands": [{**BAND, "end": "07:00"}]}), "start must be before end"),
        (minimal(nurses={"bands": [{**BAND, "nurses": 0}]}), "nurses.bands.0.nurses"),
        (
            minimal(nurses={"bands": [BAND, {**BAND, "start": "11:00", "end": "13:00"}]}),
            "monday: nurse bands overlap at 11:00",
        ),
        (minimal(nurses={"bands": [BAND], "patients_per_nurse": 0}), "nurses.patients_per_nurse"),
        (with_protocol(nurse_start_minutes=-5), "protocols.dhe.nurse_start_minutes"),
        (with_protocol(nurse_start_minutes=90, nurse_end_minutes=60), "exceed the infusion's"),
        (with_protocol(series={"visits": 0}), "protocols.dhe.series.visits"),
        (with_protocol(series={"visits": 3, "spacing": "weekly"}), "protocols.dhe.series.spacing"),
        (with_protocol(series={"visits": 3, "spacing": EVERY_N_DAYS}), "needs every_days"),
        (
            with_protocol(repeat={"every_days": 84, "tolerance_days": 84}),
            "protocols.dhe.repeat.tolerance_days",
        ),
        (with_protocol(dosing={"max_mg_per_week": 6}), "protocols.dhe.dosing.mg_per_visit"),
        (
            with_protocol(series={"visits": 5}, dosing={"mg_per_visit": 2, "max_mg_per_week": 6}),
            "5 visits of 2 mg within a week give 10 mg, above the 6 mg weekly cap",
        ),
    ],
)
def test_each_kind_of_error_is_named(data: dict, message: str) -> None:
    with pytest.raises(ClinicError) as caught:
        clinic_from_dict(data)
    assert message in str(caught.value)
