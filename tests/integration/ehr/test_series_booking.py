"""A referral's whole series booked all or nothing: DHE on SEKMET (one transaction) and on the
clinic's chairs; a Slot taken between the search and the transaction (stale ifMatch) books
nothing and the booking searches again; cancelling frees every Slot; 12 concurrent bookings
for a day's last nurse starts book exactly what the rules allow."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from referral_service.adapters.db.tables import appointments
from referral_service.adapters.ehr.client import FhirClient
from referral_service.config import Settings
from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.domain.scheduling.rules import Visit, hard_rule_violations
from referral_service.fhir import scheduling as fs
from referral_service.runtime import book_referral, cancel_booking
from referral_service.services.ehr.seed import seed_demo
from tests.integration.ehr.conftest import add_referrals, booking_request
from tests.support.sekmet import SekmetServer

pytestmark = pytest.mark.ehr
ALL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ZONE = "America/New_York"


def dhe_clinic(chairs: int) -> Clinic:
    """Open 09:00-11:00 daily (one 2-hour run per chair-day), DHE 3 consecutive open days."""
    tag = uuid.uuid4().hex[:6]
    return clinic_from_dict(
        {
            "time_zone": ZONE,
            "min_lead_minutes": 0,
            "chairs": [{"id": f"chair-{tag}-{i}", "name": f"Chair {i}"} for i in range(chairs)],
            "opening_hours": {day: {"open": "09:00", "close": "11:00"} for day in ALL_DAYS},
        }
    )


def midnight_before(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def start_day() -> date:
    return datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)


def client_for(server: SekmetServer) -> FhirClient:
    return FhirClient.from_settings(Settings.from_env(server.env()))


def seeded(server: SekmetServer, clinic: Clinic, chairs: int, days: int) -> tuple[Settings, dict]:
    with client_for(server) as client:
        report = seed_demo(client, clinic, days=days, chairs=chairs, start=start_day())
    env = {**server.env(), "REFERRAL_EHR_SCHEDULES": ",".join(report["schedules"])}
    return Settings.from_env(env), report


def ours(client: FhirClient, referral_id: str) -> list[dict]:
    return list(client.search("Appointment", {"identifier": fs.appointment_token(referral_id)}))


def rows_of(engine: Engine, referral_id: str) -> list[dict]:
    with engine.connect() as conn:
        query = select(appointments).where(appointments.c.referral_id == referral_id)
        return [dict(r) for r in conn.execute(query.order_by(appointments.c.visit)).mappings()]


def book_dhe(client, engine, clinic, settings, referral_id, now):  # type: ignore[no-untyped-def]
    return book_referral(
        booking_request(referral_id, now, protocol="dhe"),
        clinic=clinic,
        engine=engine,
        ehr=client,
        settings=settings,
        now=now,
    )


def assert_series_on_ehr(client: FhirClient, referral_id: str) -> list[dict]:
    booked = sorted(
        (a for a in ours(client, referral_id) if a["status"] == "booked"),
        key=lambda a: a["start"],
    )
    assert len(booked) == 3
    days = [fs.parse_instant(a["start"], "start").astimezone(ZoneInfo(ZONE)).date() for a in booked]
    assert [(d - days[0]).days for d in days] == [0, 1, 2]  # consecutive open days
    for number, appointment in enumerate(booked, 1):
        assert fs.appointment_visit(appointment) == number
        assert appointment["description"] == f"visit {number} of 3"
        slot_ids = fs.appointment_slot_ids(appointment)
        assert len(slot_ids) == 8
        for sid in slot_ids:
            slot = client.read("Slot", sid)
            assert slot["status"] == "busy"
            assert fs.slot_holder(slot) == f"Appointment/{appointment['id']}"
    return booked


def test_dhe_series_booked_in_one_transaction_then_cancelled(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic = dhe_clinic(2)
    settings, _ = seeded(sekmet_server, clinic, chairs=2, days=4)
    (rid,) = referral_ids(1)
    now = midnight_before(start_day())
    add_referrals(sqlite_engine, [rid], now)
    interactions: list[str] = []
    with client_for(sekmet_server) as client:
        client.on_request = lambda interaction, status, seconds: (
            interaction != "token" and interactions.append(interaction)
        )
        outcome = book_dhe(client, sqlite_engine, clinic, settings, rid, now)
        assert outcome.booked
        # the Schedules (configured: one read each), one batch search, one transaction
        assert interactions == ["read", "read", "transaction", "transaction"]
        booked = assert_series_on_ehr(client, rid)
        rows = rows_of(sqlite_engine, rid)
        assert [r["visit"] for r in rows] == [1, 2, 3] and {r["visits"] for r in rows} == {3}
        assert [r["ehr_reference"] for r in rows] == [f"Appointment/{a['id']}" for a in booked]

        assert cancel_booking(rid, engine=sqlite_engine, ehr=client, now=datetime.now(UTC))
        for appointment in booked:
            assert client.read("Appointment", appointment["id"])["status"] == "cancelled"
            for sid in fs.appointment_slot_ids(appointment):
                slot = client.read("Slot", sid)
                assert slot["status"] == "free" and fs.slot_holder(slot) is None
        assert {r["status"] for r in rows_of(sqlite_engine, rid)} == {"cancelled"}


def test_a_slot_taken_before_the_transaction_books_nothing_then_retries(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic = dhe_clinic(1)
    settings, report = seeded(sekmet_server, clinic, chairs=1, days=5)
    (rid,) = referral_ids(1)
    now = midnight_before(start_day())
    add_referrals(sqlite_engine, [rid], now)
    rival = client_for(sekmet_server)
    taken: list[str] = []

    def take_first_slot(interaction: str, status: int, seconds: float) -> None:
        if interaction == "transaction" and not taken:  # the first is the range search batch
            first = min(
                rival.search("Slot", {"schedule": f"Schedule/{report['schedules'][0]}"}),
                key=lambda s: s["start"],
            )
            rival.update(fs.held_slot(first, "Appointment/someone-else"))
            taken.append(str(first["id"]))

    with client_for(sekmet_server) as client:
        client.on_request = take_first_slot
        outcome = book_dhe(client, sqlite_engine, clinic, settings, rid, now)
        client.on_request = None
        assert outcome.booked and taken
        booked = assert_series_on_ehr(client, rid)
        assert all(taken[0] not in fs.appointment_slot_ids(a) for a in booked)
        # The failed transaction left nothing behind: only the three booked Appointments.
        assert len(ours(client, rid)) == 3
        first_day = fs.parse_instant(booked[0]["start"], "s").astimezone(ZoneInfo(ZONE)).date()
        assert first_day == start_day() + timedelta(days=1)  # day 1's only run was taken
    rival.close()


@pytest.mark.postgres
def test_dhe_series_on_the_clinic_chairs(postgres_engine: Engine, referral_ids) -> None:
    clinic = dhe_clinic(1)
    first, second = referral_ids(2)
    now = midnight_before(start_day())
    add_referrals(postgres_engine, [first, second], now)
    settings = Settings.from_env({})
    for rid in (first, second):
        assert book_dhe(None, postgres_engine, clinic, settings, rid, now).booked
    a, b = rows_of(postgres_engine, first), rows_of(postgres_engine, second)
    assert [r["visit"] for r in a] == [1, 2, 3] and [r["status"] for r in a] == ["booked"] * 3
    days = [r["start"].astimezone(ZoneInfo(ZONE)).date() for r in a + b]
    assert days == [start_day() + timedelta(days=k) for k in (0, 1, 2, 3, 4, 5)]
    assert a[0]["resource"]["description"] == "visit 1 of 3"
    assert cancel_booking(first, engine=postgres_engine, ehr=None, now=datetime.now(UTC))
    assert {r["status"] for r in rows_of(postgres_engine, first)} == {"cancelled"}


def nurse_clinic() -> Clinic:
    """12 chairs but one nurse, 1:2, 09:00-12:00; 60-minute infusions with 30 nurse minutes at
    the start and 15 at the end: the nurse, not the chairs, decides how many fit a day."""
    return clinic_from_dict(
        {
            "time_zone": ZONE,
            "min_lead_minutes": 0,
            "window_days": {"routine": 1, "urgent": 1, "asap": 1, "stat": 1},
            "chairs": [{"id": f"c{i}", "name": f"Chair {i}"} for i in range(12)],
            "opening_hours": {day: {"open": "09:00", "close": "12:00"} for day in ALL_DAYS},
            "nurses": {
                "patients_per_nurse": 2,
                "bands": [{"days": list(ALL_DAYS), "start": "09:00", "end": "12:00", "nurses": 1}],
            },
            "protocols": {
                "standard-infusion": {
                    "minutes": 60,
                    "nurse_start_minutes": 30,
                    "nurse_end_minutes": 15,
                }
            },
        }
    )


def book_all(engine: Engine, clinic: Clinic, ids: list[str], now: datetime, *, race: bool) -> int:
    settings = Settings.from_env({})
    results: list[bool] = []
    barrier = threading.Barrier(len(ids)) if race else None

    def one(rid: str) -> None:
        if barrier is not None:
            barrier.wait()
        outcome = book_referral(
            booking_request(rid, now),
            clinic=clinic,
            engine=engine,
            ehr=None,
            settings=settings,
            now=now,
        )
        results.append(outcome.booked)

    if race:
        threads = [threading.Thread(target=one, args=(rid,)) for rid in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    else:
        for rid in ids:
            one(rid)
    return sum(results)


@pytest.mark.postgres
def test_twelve_concurrent_bookings_book_exactly_what_the_nurse_allows(
    postgres_engine: Engine, referral_ids
) -> None:
    clinic = nurse_clinic()
    now = midnight_before(start_day())
    sequential, racing = referral_ids(12), referral_ids(24)[12:]
    add_referrals(postgres_engine, sequential + racing, now)
    allowed = book_all(postgres_engine, clinic, sequential, now, race=False)
    assert 0 < allowed < 12  # the nurse, not the 12 chairs, is the limit
    # The same demand again, all at once, on a second (identical) day's worth of room: clear
    # the first run's rows so the racers meet the same empty day.
    with postgres_engine.begin() as conn:
        from referral_service.adapters.db.tables import chair_claims

        conn.execute(chair_claims.delete())
        conn.execute(appointments.delete())
    booked = book_all(postgres_engine, clinic, racing, now, race=True)
    assert booked == allowed
    with postgres_engine.connect() as conn:
        rows = conn.execute(select(appointments).where(appointments.c.status == "booked"))
        visits = [Visit.of(clinic, r.protocol, r.chair_id, r.start) for r in rows]
    assert len(visits) == allowed
    assert hard_rule_violations(clinic, visits) == []
