"""The EHR adapter's first search reaches as far as the last booked series started: once the
window's first days are full, a booking costs one search instead of two, and a day freed
before that is still found first (the range always starts at the window's opening)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine

from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr.ehr_schedule import EhrSchedule
from referral_service.domain.scheduling.clinic import Clinic
from referral_service.runtime import cancel_booking
from referral_service.services.booking.schedule import book_in, find_time
from tests.integration.ehr.conftest import add_referrals, booking_request
from tests.integration.ehr.test_series_booking import (
    client_for,
    dhe_clinic,
    midnight_before,
    seeded,
    start_day,
)
from tests.support.sekmet import SekmetServer

pytestmark = pytest.mark.ehr


def _book(schedule: EhrSchedule, engine: Engine, clinic: Clinic, rid: str, now: datetime) -> date:
    """Book through one adapter (its first-range hint lives there); the first visit's day."""
    held = find_time(schedule, booking_request(rid, now), clinic, now)
    with SqlUnitOfWork(engine, job_attempts=3) as uow:
        outcome = book_in(uow, schedule, held, now)
    assert outcome.booked and outcome.start is not None
    return outcome.start.astimezone(clinic.zone).date()


def test_full_first_days_cost_one_search_once_a_later_day_was_booked(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic = dhe_clinic(2)  # one 2-hour run a day per chair: two bookings fill a day
    settings, _ = seeded(sekmet_server, clinic, chairs=2, days=8)
    ids = referral_ids(12)
    now = midnight_before(start_day())
    add_referrals(sqlite_engine, ids, now)
    calls: list[str] = []
    with client_for(sekmet_server) as client:
        client.on_request = lambda interaction, status, seconds: calls.append(interaction)
        schedule = EhrSchedule(client, clinic, settings.ehr_schedules)
        schedule.schedules()  # read once, not counted below
        days, batches = [], []
        for rid in ids[:10]:
            calls.clear()
            days.append(_book(schedule, sqlite_engine, clinic, rid, now))
            batches.append(calls.count("transaction"))  # range searches + the booking
        first = start_day()
        assert [(d - first).days for d in days] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        # Days 3 and 4 lie past the first 3-day range: the first booking on each needs a
        # second search; the next one reads from day 0 to the day the last series started
        # on in one search (it was 3 batches for each before).
        assert batches == [2, 2, 2, 2, 2, 2, 3, 2, 3, 2]

        # A day freed before the last booked one is found first, still in one search.
        assert cancel_booking(ids[2], engine=sqlite_engine, ehr=client, now=datetime.now(UTC))
        calls.clear()
        assert (_book(schedule, sqlite_engine, clinic, ids[10], now) - first).days == 1
        assert calls.count("transaction") == 2
        # The last series now started on day 1: the next free day (5) takes the later
        # ranges again, and is still the earliest.
        calls.clear()
        assert (_book(schedule, sqlite_engine, clinic, ids[11], now) - first).days == 5
        assert calls.count("transaction") == 3
