"""Our rows for what a booking holds on the EHR (EhrSchedule.record), on SQLite and
PostgreSQL: a first booking inserts its visits without reading first; a rebooking refreshes
the visits the referral already has rows for (same row, next version) and adds the others; the
outcome is what reading the rows back gives."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr.ehr_schedule import EhrSchedule, HeldSeries
from referral_service.domain.scheduling.booking import outcome_of
from referral_service.domain.scheduling.clinic import load_clinic
from referral_service.domain.scheduling.planner import RepeatDue
from tests.integration.ehr.conftest import add_referrals, booking_request

CLINIC = load_clinic(None)
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def appointment(appointment_id: str, start: str, end: str, visit: int = 1) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": appointment_id,
        "status": "booked",
        "description": f"visit {visit}",
        "start": start,
        "end": end,
        "participant": [{"actor": {"reference": "Location/chair-2"}}],
    }


def record(engine: Engine, held: HeldSeries) -> tuple[Any, list[dict[str, Any]]]:
    schedule = EhrSchedule(None, CLINIC, ())  # type: ignore[arg-type]  # record asks no EHR
    with SqlUnitOfWork(engine, job_attempts=3) as uow:
        outcome = schedule.record(uow, held, NOW)
    with SqlUnitOfWork(engine, job_attempts=3) as uow:
        rows = uow.appointments.series(held.request.referral_id)
    return outcome, rows


def test_a_booking_then_a_rebooking_keep_one_row_per_visit(
    booking_db: Engine, referral_ids
) -> None:
    (rid,) = referral_ids(1)
    add_referrals(booking_db, [rid], NOW)
    request = booking_request(rid, NOW, protocol="eptinezumab")
    protocol = CLINIC.protocol("eptinezumab")
    due = RepeatDue(date(2026, 5, 25), date(2026, 6, 8))
    first = appointment("a1", "2026-03-03T14:00:00Z", "2026-03-03T15:00:00Z")
    outcome, rows = record(booking_db, HeldSeries(request, protocol, (first,), due))
    assert outcome == outcome_of(rows[0])
    assert outcome.start == datetime(2026, 3, 3, 14, tzinfo=UTC)
    assert [(r["visit"], r["version_id"], r["status"]) for r in rows] == [
        (1, 1, "booked"),
        (2, 1, "proposed"),
    ]
    assert rows[0]["ehr_reference"] == "Appointment/a1"
    assert rows[0]["resource"]["basedOn"] == [{"reference": request.service_request_ref}]
    assert rows[1]["resource"]["id"] == rows[1]["id"]
    assert rows[1]["resource"]["meta"] == {"versionId": "1"}

    # Rebooked as a two-visit series starting at another offset: visit 1 and the due row
    # (now visit 3) are new rows or refreshed ones by their visit number.
    again = (
        appointment("b1", "2026-03-04T09:00:00-05:00", "2026-03-04T10:00:00-05:00"),
        appointment("b2", "2026-03-05T09:00:00-05:00", "2026-03-05T10:00:00-05:00", 2),
    )
    outcome, after = record(booking_db, HeldSeries(request, protocol, again, due))
    assert outcome == outcome_of(after[0])
    assert outcome.start == datetime(2026, 3, 4, 14, tzinfo=UTC)
    assert [(r["visit"], r["version_id"], r["ehr_reference"]) for r in after] == [
        (1, 2, "Appointment/b1"),
        (2, 2, "Appointment/b2"),
        (3, 1, None),
    ]
    assert [r["id"] for r in after[:2]] == [r["id"] for r in rows]  # refreshed in place
    assert after[1]["status"] == "booked" and after[1]["visits"] == 2
    assert after[2]["resource"]["id"] == after[2]["id"]
