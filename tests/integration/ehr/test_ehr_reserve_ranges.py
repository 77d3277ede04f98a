"""On the EHR, a short day's reserve is kept across search ranges, as the planner keeps it over
the whole window: a routine referral takes the reserved room in the first range only when no
later range has a day that keeps it (docs/scheduling.md, "The reserve")."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import Engine

from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr.ehr_schedule import EhrSchedule
from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.services.booking.schedule import book_in, find_time
from tests.integration.ehr.conftest import add_referrals, booking_request
from tests.integration.ehr.test_series_booking import (
    ALL_DAYS,
    ZONE,
    client_for,
    midnight_before,
    seeded,
    start_day,
)
from tests.support.sekmet import SekmetServer

pytestmark = pytest.mark.ehr


def short_day_clinic(day0: date) -> Clinic:
    """One chair. `day0` (tomorrow) is short, 09:00-11:00 (one 2-hour visit) against 09:00-14:00
    (two) on the other days, and the day after it is closed: day0 keeps a reserve of one visit."""
    tag = uuid.uuid4().hex[:6]
    short = ALL_DAYS[day0.weekday()]
    hours = {day: ("09:00", "11:00" if day == short else "14:00") for day in ALL_DAYS}
    return clinic_from_dict(
        {
            "time_zone": ZONE,
            "min_lead_minutes": 0,
            "chairs": [{"id": f"chair-{tag}", "name": "Chair"}],
            "opening_hours": {day: {"open": o, "close": c} for day, (o, c) in hours.items()},
            "closures": [(day0 + timedelta(days=1)).isoformat()],
            # One nurse, one patient: the nurse, not the chairs, bounds each day (the reserve is
            # counted on the day's grid, where the clinic's own chair id is one more chair).
            "nurses": {
                "patients_per_nurse": 1,
                "bands": [
                    {"days": [day], "start": o, "end": c, "nurses": 1}
                    for day, (o, c) in hours.items()
                ],
            },
        }
    )


def _book(
    schedule: EhrSchedule,
    engine: Engine,
    clinic: Clinic,
    rid: str,
    now: datetime,
    *,
    priority: str = "routine",
    earliest: datetime | None = None,
) -> int:
    """Book one referral; its first visit's day, counted from tomorrow."""
    request = booking_request(rid, now, priority=priority, earliest_start=earliest)
    held = find_time(schedule, request, clinic, now)
    with SqlUnitOfWork(engine, job_attempts=3) as uow:
        outcome = book_in(uow, schedule, held, now)
    assert outcome.booked and outcome.start is not None
    return (outcome.start.astimezone(clinic.zone).date() - start_day()).days


def test_a_routine_referral_keeps_the_reserve_in_a_later_range(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    day0 = start_day()
    clinic = short_day_clinic(day0)
    settings, _ = seeded(sekmet_server, clinic, chairs=1, days=8)
    ids = referral_ids(4)
    now = midnight_before(day0)
    add_referrals(sqlite_engine, ids, now)
    day2 = datetime.combine(day0 + timedelta(days=2), time(), tzinfo=clinic.zone)
    with client_for(sekmet_server) as client:
        filler = EhrSchedule(client, clinic, settings.ehr_schedules)
        # Day 2, the first range's only other open day, is filled (two visits).
        assert [_book(filler, sqlite_engine, clinic, r, now, earliest=day2) for r in ids[:2]] == [
            2,
            2,
        ]
        # The first range (days 0-2) offers only day 0's last visit, the reserve; the next
        # range's day 3 keeps it. Before: day 0, in the first range.
        fresh = EhrSchedule(client, clinic, settings.ehr_schedules)  # no first-range hint
        assert _book(fresh, sqlite_engine, clinic, ids[2], now) == 3
        # The room kept is there for a stat referral, whose day window has no other day.
        assert _book(fresh, sqlite_engine, clinic, ids[3], now, priority="stat") == 0
