"""On the clinic EHR (SEKMET): the referrer's occurrencePeriod moves the DHE series inside it;
one the window cannot meet books nothing and names the occurrence."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from referral_service.fhir import scheduling as fs
from referral_service.fhir.occurrence import requested_occurrence
from referral_service.runtime import book_referral
from tests.integration.ehr.conftest import add_referrals, booking_request
from tests.integration.ehr.test_series_booking import (
    ZONE,
    assert_series_on_ehr,
    client_for,
    dhe_clinic,
    midnight_before,
    ours,
    seeded,
    start_day,
)
from tests.support.sekmet import SekmetServer

pytestmark = pytest.mark.ehr


def test_an_occurrence_period_on_the_ehr(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic = dhe_clinic(2)
    settings, _ = seeded(sekmet_server, clinic, chairs=2, days=8)
    inside, outside = referral_ids(2)
    now = midnight_before(start_day())
    add_referrals(sqlite_engine, [inside, outside], now)
    first = start_day() + timedelta(days=3)
    periods = {
        inside: {"start": first.isoformat(), "end": (first + timedelta(days=4)).isoformat()},
        outside: {"end": (start_day() - timedelta(days=1)).isoformat()},
    }
    with client_for(sekmet_server) as client:
        outcomes = {}
        for rid, period in periods.items():
            occurrence = requested_occurrence({"occurrencePeriod": period}, clinic.zone)
            request = dataclasses.replace(
                booking_request(rid, now, protocol="dhe"), occurrence=occurrence
            )
            outcomes[rid] = book_referral(
                request, clinic=clinic, engine=sqlite_engine, ehr=client, settings=settings, now=now
            )
        assert outcomes[inside].booked
        booked = assert_series_on_ehr(client, inside)
        days = [
            fs.parse_instant(a["start"], "start").astimezone(ZoneInfo(ZONE)).date() for a in booked
        ]
        assert days[0] == first  # three open days later than the window's first
        assert outcomes[outside].status == "no-slot"
        assert outcomes[outside].reason == "occurrence"
        assert not [a for a in ours(client, outside) if a["status"] == "booked"]
