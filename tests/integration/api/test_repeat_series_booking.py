"""A repeated series booked at once (a 3-visit course with `repeat.book: true`), through intake
and the worker on SQLite and PostgreSQL: the whole repeat course is booked, its first visit in
the due window and the others on the series' spacing, each claiming its chair and listed in the
Task and on the console; revoking frees them all. A repeat whose only due day is closed books
the first course and records the repeat as due, none of it booked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from referral_service.config import Settings
from referral_service.worker import Worker
from tests.integration.api.test_repeat_booking import (
    _chair_day,
    _claims,
    _local_day,
    _rows,
    one_chair_clinic,
    revoke,
)
from tests.support.referrals import (
    eligible_referral,
    post_referral,
    referral_task,
)

# Three visits on consecutive open days, repeated a fortnight later +- 2 days.
CONSECUTIVE = one_chair_clinic(
    {"every_days": 14, "tolerance_days": 2}, {"visits": 3, "spacing": "consecutive-open-days"}
)
# Three visits 5 days apart on a weekday clinic (only a Friday start keeps all three on
# weekdays: Friday, Wednesday, Monday), repeated exactly 16 days after the first: the repeat's
# only first day is a Sunday, when the clinic is closed.
SUNDAY_DUE = one_chair_clinic(
    {"every_days": 16}, {"visits": 3, "spacing": "every-n-days", "every_days": 5}
)


@pytest.fixture
def clinic_file(request: pytest.FixtureRequest) -> dict:
    return getattr(request, "param", CONSECUTIVE)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, clinic_file: dict) -> Settings:
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(clinic_file))
    return Settings(database_url=database_url, job_backoff_base_seconds=0.0, clinic_file=str(path))


def next_open(day):  # type: ignore[no-untyped-def]
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def post_series(client, runtime, identifier: str) -> str:  # type: ignore[no-untyped-def]
    referral_id = post_referral(client, eligible_referral(identifier))
    Worker(runtime).run_until_idle()
    return referral_id


def test_the_whole_repeat_series_is_booked_listed_and_freed_on_cancel(
    client, runtime, engine
) -> None:
    referral_id = post_series(client, runtime, "repeat-series")
    rows = _rows(runtime, referral_id)
    assert [(r["status"], r["visit"], r["visits"]) for r in rows] == [
        ("booked", k, 3) for k in range(1, 7)
    ]
    days = [_local_day(runtime, r) for r in rows]
    assert days[1] == next_open(days[0]) and days[2] == next_open(days[1])
    assert timedelta(days=12) <= days[3] - days[0] <= timedelta(days=16)
    assert days[4] == next_open(days[3]) and days[5] == next_open(days[4])
    assert [r["resource"]["description"] for r in rows[3:]] == [
        f"repeat course, visit {k} of 3" for k in (1, 2, 3)
    ]
    assert [_claims(engine, r["id"]) for r in rows] == [8] * 6

    task = referral_task(client, referral_id)
    assert task["businessStatus"]["coding"][0]["code"] == "booked"
    assert [(o["type"]["text"], o["valueReference"]["reference"]) for o in task["output"]] == [
        (f"visit {k} of 3", f"Appointment/{r['id']}") for k, r in enumerate(rows[:3], 1)
    ] + [
        (f"repeat course, visit {k} of 3", f"Appointment/{r['id']}")
        for k, r in enumerate(rows[3:], 1)
    ]
    for k, row in enumerate(rows[3:], 1):
        html = _chair_day(client, _local_day(runtime, row))
        assert (
            f"standard-infusion repeat {k}/3" in html and f"repeat course, visit {k} of 3" in html
        )

    assert {r["status"] for r in revoke(client, runtime, referral_id)} == {"cancelled"}
    assert [_claims(engine, r["id"]) for r in rows] == [0] * 6


@pytest.mark.parametrize("clinic_file", [SUNDAY_DUE], indirect=True)
def test_a_repeat_series_without_room_is_recorded_as_due_and_none_of_it_booked(
    client, runtime, engine
) -> None:
    referral_id = post_series(client, runtime, "repeat-series-due")
    rows = _rows(runtime, referral_id)
    assert [(r["status"], r["visit"]) for r in rows] == [
        ("booked", 1),
        ("booked", 2),
        ("booked", 3),
        ("proposed", 4),
    ]
    days = [_local_day(runtime, r) for r in rows[:3]]
    assert days == [days[0], days[0] + timedelta(days=5), days[0] + timedelta(days=10)]
    assert days[0].weekday() == 4  # Friday: the repeat falls due on a Sunday
    task = referral_task(client, referral_id)
    assert task["businessStatus"]["coding"][0]["code"] == "booked"
    assert [o["type"]["text"] for o in task["output"]] == [
        "visit 1 of 3",
        "visit 2 of 3",
        "visit 3 of 3",
        "repeat course due",
    ]
