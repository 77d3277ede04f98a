"""The clinic file: the built-in example and the errors a bad file gets (naming the key)."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
import yaml

from referral_service.domain.scheduling.clinic import ClinicError, clinic_from_dict, load_clinic


def minimal(**overrides: object) -> dict:
    data = {
        "time_zone": "Europe/London",
        "chairs": [{"id": "a", "name": "Chair A"}],
        "opening_hours": {"monday": {"open": "08:00", "close": "12:00"}},
    }
    data.update(overrides)
    return data


def test_builtin_example_clinic() -> None:
    clinic = load_clinic(None)
    assert clinic.time_zone == "America/New_York"
    assert [c.id for c in clinic.chairs] == ["chair-1", "chair-2", "chair-3", "chair-4"]
    assert clinic.opening_hours[0].opens == time(8) and clinic.opening_hours[4].closes == time(18)
    assert clinic.opening_hours[5].opens == time(9) and clinic.opening_hours[5].closes == time(13)
    assert 6 not in clinic.opening_hours  # closed on Sunday
    assert clinic.cell_minutes == 15 and clinic.min_lead_time == timedelta(hours=2)
    assert {n: p.minutes for n, p in clinic.protocols.items()} == {
        "standard-infusion": 120,
        "dhe": 120,
        "eptinezumab": 60,
    }
    assert "ketorolac" in clinic.protocol("standard-infusion").drugs
    assert clinic.window_days == {"stat": 1, "asap": 1, "urgent": 3, "routine": 14}
    assert date(2026, 12, 25) in clinic.closures


def test_defaults_fill_what_a_small_file_leaves_out() -> None:
    clinic = clinic_from_dict(minimal())
    assert clinic.protocol("dhe").minutes == 120
    assert clinic.window_days["urgent"] == 3
    assert clinic.min_lead_time == timedelta(hours=2)


def test_load_from_file(tmp_path) -> None:
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(minimal(closures=["2026-05-04"], min_lead_minutes=30)))
    clinic = load_clinic(str(path))
    assert clinic.closures == {date(2026, 5, 4)}
    assert clinic.min_lead_time == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        (
            {"opening_hours": {"monday": {"open": 540, "close": "12:00"}}},
            "opening_hours.monday.open",
        ),
        (
            {"opening_hours": {"funday": {"open": "08:00", "close": "12:00"}}},
            "opening_hours.funday",
        ),
        ({"opening_hours": {"monday": {"open": "12:00", "close": "08:00"}}}, "opening_hours"),
        ({"chairs": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]}, "chairs"),
        ({"chairs": [{"name": "nameless"}]}, "chairs.0.id"),
        ({"cell_minutes": 7}, "cell_minutes"),
        ({"protocols": {"dhe": {"minutes": 100}}}, "protocols"),
        ({"window_days": {"routine": 14}}, "window_days"),
        ({"closures": ["next tuesday"]}, "closures.0"),
    ],
)
def test_errors_name_the_bad_key(overrides: dict, key: str) -> None:
    with pytest.raises(ClinicError) as caught:
        clinic_from_dict(minimal(**overrides))
    assert f"{key}" in str(caught.value)


def test_unreadable_and_non_mapping_files(tmp_path) -> None:
    with pytest.raises(ClinicError, match="cannot read"):
        load_clinic(str(tmp_path / "missing.yaml"))
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ClinicError, match="mapping"):
        load_clinic(str(path))
