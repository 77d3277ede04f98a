"""A repeat course booked at once (clinic file `repeat.book: true`), through intake and the
worker on SQLite and PostgreSQL: the repeat visit is booked in its due window and listed in the
Task's output as the repeat course; a due window already full leaves it recorded as due while
the first visit is booked; revoking the referral cancels the repeat and frees its chair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select

from referral_service.adapters.db.tables import chair_claims
from referral_service.config import Settings
from referral_service.worker import Worker
from tests.support.referrals import (
    FHIR_JSON,
    eligible_referral,
    post_referral,
    referral_task,
    variant,
)

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def one_chair_clinic(repeat: dict, series: dict | None = None) -> dict:
    """One chair, one two-hour infusion a weekday: a day is full after one visit. The standard
    infusion is repeated (`repeat`, booked at once), and given as `series` when one is named."""
    course = {"series": series} if series is not None else {}
    return {
        "name": "Repeat-booking clinic",
        "time_zone": "America/New_York",
        "min_lead_minutes": 0,
        "chairs": [{"id": "chair-1", "name": "Chair 1"}],
        "opening_hours": {d: {"open": "09:00", "close": "11:00"} for d in WEEKDAYS},
        "protocols": {
            "standard-infusion": {
                "minutes": 120,
                "drugs": ["iv-fluids", "metoclopramide", "ketorolac"],
                **course,
                "repeat": {**repeat, "book": True},
            },
            "dhe": {"minutes": 120, "drugs": ["dhe"]},
            "eptinezumab": {"minutes": 60, "drugs": ["eptinezumab"]},
        },
    }


ONE_SLOT_A_DAY = one_chair_clinic({"every_days": 7, "tolerance_days": 0})


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(ONE_SLOT_A_DAY))
    return Settings(database_url=database_url, job_backoff_base_seconds=0.0, clinic_file=str(path))


def _rows(runtime, referral_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    with runtime.unit_of_work(read_only=True) as uow:
        return list(uow.appointments.series(referral_id))


def _local_day(runtime, row: dict):  # type: ignore[no-untyped-def]
    start = row["start"] if row["start"].tzinfo else row["start"].replace(tzinfo=UTC)
    return start.astimezone(runtime.clinic.zone).date()


def _claims(engine: Engine, appointment_id: str) -> int:
    with engine.connect() as conn:
        query = select(chair_claims).where(chair_claims.c.appointment_id == appointment_id)
        return len(conn.execute(query).all())


def _chair_day(client, day) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/console/chairs?day={day.isoformat()}", headers={"Accept": "text/html"})
    assert response.status_code == 200
    return str(response.get_data(as_text=True))


def revoke(client, runtime, referral_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """The referrer revokes the referral (a PUT); the worker runs; its visit rows after."""
    body = variant(eligible_referral("repeat-revoked"), id=referral_id, status="revoked")
    response = client.put(
        f"/fhir/ServiceRequest/{referral_id}",
        json=body,
        headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200
    Worker(runtime).run_until_idle()
    return _rows(runtime, referral_id)


def _repeats_due(html: str) -> str:
    """The chair day's 'repeats due' table (absent: none due)."""
    if 'id="repeats-due"' not in html:
        return ""
    return html[html.index('id="repeats-due"') :].split("</table>")[0]


def test_the_repeat_is_booked_in_its_window_listed_in_the_task_and_cancelled_with_it(
    client, runtime, engine
) -> None:
    referral_id = post_referral(client, eligible_referral("repeat-booked"))
    Worker(runtime).run_until_idle()

    first, repeat = _rows(runtime, referral_id)
    assert (first["status"], first["visit"], first["visits"]) == ("booked", 1, 1)
    assert (repeat["status"], repeat["visit"], repeat["visits"]) == ("booked", 2, 1)
    assert _local_day(runtime, repeat) == _local_day(runtime, first) + timedelta(days=7)
    assert repeat["resource"]["description"] == "repeat course"
    assert _claims(engine, repeat["id"]) == 8  # two hours of 15-minute cells

    task = referral_task(client, referral_id)
    assert task["businessStatus"]["coding"][0]["code"] == "booked"
    assert task["output"] == [
        {
            "type": {"text": "appointment"},
            "valueReference": {"reference": f"Appointment/{first['id']}"},
        },
        {
            "type": {"text": "repeat course"},
            "valueReference": {"reference": f"Appointment/{repeat['id']}"},
        },
    ]
    served = client.get(f"/fhir/Appointment/{repeat['id']}").get_json()
    assert served["status"] == "booked" and served["description"] == "repeat course"
    # The console's chair day on the repeat's day: a booking labelled the repeat, not a due one.
    html = _chair_day(client, _local_day(runtime, repeat))
    assert "standard-infusion repeat" in html and "repeat course" in html
    assert html.count(f'data-referral="{referral_id}"') == 1
    assert referral_id[:8] not in _repeats_due(html)

    assert {r["status"] for r in revoke(client, runtime, referral_id)} == {"cancelled"}
    assert _claims(engine, repeat["id"]) == 0
    assert client.get(f"/fhir/Appointment/{repeat['id']}").get_json()["status"] == "cancelled"


def test_a_full_due_window_books_the_first_visit_and_records_the_repeat_as_due(
    client, runtime
) -> None:
    # The first open day's only chair time: where the next referral would start.
    opener = post_referral(client, eligible_referral("repeat-opener"))
    Worker(runtime).run_until_idle()
    (day_one, _) = _rows(runtime, opener)
    repeat_day = _local_day(runtime, day_one) + timedelta(days=8)
    # A referral the referrer wants on the day the next referral's repeat falls due fills it.
    blocker = eligible_referral("repeat-blocker")
    blocker["occurrenceDateTime"] = repeat_day.isoformat()
    blocker_id = post_referral(client, blocker)
    Worker(runtime).run_until_idle()
    assert _local_day(runtime, _rows(runtime, blocker_id)[0]) == repeat_day

    referral_id = post_referral(client, eligible_referral("repeat-due"))
    Worker(runtime).run_until_idle()
    first, due = _rows(runtime, referral_id)
    assert first["status"] == "booked"
    assert _local_day(runtime, first) + timedelta(days=7) == repeat_day
    assert (due["status"], due["visit"], due["chair_id"]) == ("proposed", 2, "")
    task = referral_task(client, referral_id)
    assert task["businessStatus"]["coding"][0]["code"] == "booked"
    outputs = task["output"]
    assert [o["type"]["text"] for o in outputs] == ["appointment", "repeat course due"]
    period = outputs[1]["valuePeriod"]
    assert datetime.fromisoformat(period["start"]).astimezone(runtime.clinic.zone).date() == (
        repeat_day
    )
    assert referral_id[:8] in _repeats_due(_chair_day(client, repeat_day))
