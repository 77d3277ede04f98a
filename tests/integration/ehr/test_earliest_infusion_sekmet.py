"""The earliest infusion date on the clinic EHR (SEKMET over HTTP): read from its free Slots
without holding any, it is the day the referral is then booked on; once booked, the next day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from referral_service.adapters.ehr.schedule_look import EhrScheduleLook
from referral_service.services.booking.earliest import earliest_infusion
from tests.support.sekmet import SekmetServer

from .conftest import add_referrals
from .test_ehr_booking_sekmet import book, client_for, seeded, slots_of

pytestmark = pytest.mark.ehr


def test_the_stated_day_is_the_booked_day_and_nothing_is_held(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic, settings, report = seeded(sekmet_server, chairs=1, days=3)  # one run a day
    (rid,) = referral_ids(1)
    add_referrals(sqlite_engine, [rid], datetime.now(UTC))
    with client_for(sekmet_server) as client:
        look = EhrScheduleLook(client, clinic, settings.ehr_schedules)

        def stated():
            found = earliest_infusion(
                look, clinic, "standard-infusion", "routine", None, datetime.now(UTC), 10.0
            )
            assert found is not None
            return found.day

        free_before = [
            s["id"] for s in slots_of(client, report["schedules"]) if s["status"] == "free"
        ]
        first = stated()
        free_after = [
            s["id"] for s in slots_of(client, report["schedules"]) if s["status"] == "free"
        ]
        assert sorted(free_after) == sorted(free_before)  # read-only: no Slot held
        outcome = book(client, sqlite_engine, clinic, settings, rid)
        assert outcome.booked and outcome.start is not None
        assert outcome.start.astimezone(clinic.zone).date() == first
        assert stated() == first + timedelta(days=1)
