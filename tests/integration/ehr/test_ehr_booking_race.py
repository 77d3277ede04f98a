"""12 referrals racing on SEKMET for a day's last nurse start book exactly one visit, and the
EHR's own Appointments then keep every nurse rule and never share a Slot.

The day: two chairs, one nurse (two patients at most), 60-minute infusions whose first 45
minutes need her hands, 09:00-12:00. Booked first: 09:15 on the first chair, 11:00 on the
second. The nurse can then start one more infusion, at 10:00 or 10:15 (their hands-on phases
overlap each other). Half the racers may start from 10:00, half only from 10:15 (a later
earliest start). Planned on the same search, a 10:00 visit must take the second chair (the
first is busy until 10:15) and a 10:15 visit takes the first (the second is busy from 11:00):
different Slots, so the EHR's `ifMatch` lets both through and only the clinic's booking lock
keeps it to one. (Racers that plan the same chair collide on a Slot, which `ifMatch` catches:
it takes different constraints, as real referrals have, to break the nurse rules.)
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from referral_service.adapters.db.tables import appointments as appointments_table
from referral_service.adapters.ehr.client import FhirClient
from referral_service.config import Settings
from referral_service.domain.scheduling.booking import BookingRequest
from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.domain.scheduling.rules import Visit, hard_rule_violations
from referral_service.fhir import scheduling as fs
from referral_service.runtime import schedule_for
from referral_service.services.booking.schedule import book_in, find_time
from referral_service.services.ehr.seed import seed_demo
from tests.integration.ehr.conftest import add_referrals, booking_request
from tests.support.sekmet import SekmetServer

pytestmark = pytest.mark.ehr
ZONE = ZoneInfo("America/New_York")
ALL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NURSES, PATIENTS_PER_NURSE, NURSE_START = 1, 2, timedelta(minutes=45)
RACERS = 12


def last_start_clinic() -> Clinic:
    tag = uuid.uuid4().hex[:6]
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "window_days": {"routine": 1, "urgent": 1, "asap": 1, "stat": 1},
            "chairs": [{"id": f"race-{tag}-{i:02d}", "name": f"Chair {i}"} for i in range(2)],
            "opening_hours": {day: {"open": "09:00", "close": "12:00"} for day in ALL_DAYS},
            "nurses": {
                "patients_per_nurse": PATIENTS_PER_NURSE,
                "bands": [
                    {"days": list(ALL_DAYS), "start": "09:00", "end": "12:00", "nurses": NURSES}
                ],
            },
            "protocols": {
                "standard-infusion": {
                    "minutes": 60,
                    "nurse_start_minutes": 45,
                    "nurse_end_minutes": 0,
                }
            },
        }
    )


def at(hour: int, minute: int = 0) -> datetime:
    day = datetime.now(ZONE).date() + timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


def request_for(referral_id: str, received_at: datetime, earliest: datetime) -> BookingRequest:
    return booking_request(referral_id, received_at, earliest_start=earliest)


def book(
    server: SekmetServer,
    engine: Engine,
    clinic: Clinic,
    settings: Settings,
    rid: str,
    earliest: datetime,
    ready: threading.Barrier | None = None,
) -> bool:
    """One booking as a worker makes it: its own EHR client and schedule, warmed first (a token,
    the Schedules read: a running worker holds both), then, once every racer is `ready`, the
    search, plan and transaction, and our rows."""
    now = at(0).astimezone(UTC)
    with FhirClient.from_settings(Settings.from_env(server.env())) as client:
        schedule, unit_of_work = schedule_for(clinic, engine, client, settings)
        if ready is not None:
            after_the_window = request_for(rid, now, at(0) + timedelta(days=7))
            assert not find_time(schedule, after_the_window, clinic, now).appointments
            ready.wait()
        held = find_time(schedule, request_for(rid, now, earliest), clinic, now)
        with unit_of_work() as uow:
            return book_in(uow, schedule, held, now).booked


def race(server, engine, clinic, settings, ids: list[str]) -> int:  # type: ignore[no-untyped-def]
    ready = threading.Barrier(len(ids))
    booked: list[bool] = []
    errors: list[BaseException] = []

    def one(k: int, rid: str) -> None:
        try:
            earliest = at(10) if k % 2 == 0 else at(10, 15)
            booked.append(book(server, engine, clinic, settings, rid, earliest, ready))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
            ready.abort()

    threads = [threading.Thread(target=one, args=(k, rid)) for k, rid in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(booked) == len(ids)
    return sum(booked)


def live_appointments(client: FhirClient, locations: set[str]) -> list[dict]:
    """Every live Appointment on our chairs that day, as the EHR itself holds them."""
    found = client.search(
        "Appointment",
        {
            "date": [f"ge{fs.fhir_instant(at(0))}", f"lt{fs.fhir_instant(at(23))}"],
            "status": "booked,pending,arrived,checked-in",
            "_count": "1000",
        },
    )
    return [a for a in found if fs.appointment_chair(a) in locations]


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of the half-open intervals covering one instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = current = 0
    for _, step in edges:  # ends sort before starts at the same instant (-1 < 1)
        current += step
        peak = max(peak, current)
    return peak


def assert_nurse_rules_kept(clinic: Clinic, appointments: list[dict], chairs: dict) -> None:
    times = [fs.appointment_times(a) for a in appointments]
    starts = [(t.start, t.start + NURSE_START) for t in times]
    assert most_at_once(starts) <= NURSES, "overlapping nurse starts exceed the nurses"
    patients = [(t.start, t.end) for t in times]
    assert most_at_once(patients) <= NURSES * PATIENTS_PER_NURSE, "patients exceed the ratio"
    visits = [
        Visit.of(clinic, "standard-infusion", chairs[fs.appointment_chair(a)], t.start)
        for a, t in zip(appointments, times, strict=True)
    ]
    assert hard_rule_violations(clinic, visits) == []
    slots = Counter(sid for a in appointments for sid in fs.appointment_slot_ids(a))
    assert slots and max(slots.values()) == 1, "a Slot is in two Appointments"


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_twelve_racers_for_the_last_nurse_start_book_one(
    db: str, request: pytest.FixtureRequest, sekmet_server: SekmetServer, referral_ids
) -> None:
    engine: Engine = request.getfixturevalue(f"{'sqlite' if db == 'sqlite' else 'postgres'}_engine")
    clinic = last_start_clinic()
    with FhirClient.from_settings(Settings.from_env(sekmet_server.env())) as client:
        report = seed_demo(client, clinic, days=1, chairs=2, start=at(0).date())
    env = {**sekmet_server.env(), "REFERRAL_EHR_SCHEDULES": ",".join(report["schedules"])}
    settings = Settings.from_env(env)
    locations = {f"Location/{lid}" for lid in report["locations"]}
    chairs = {
        f"Location/{lid}": c.id for lid, c in zip(report["locations"], clinic.chairs, strict=True)
    }
    first, second, *racers = referral_ids(2 + RACERS)
    add_referrals(engine, [first, second, *racers], at(0).astimezone(UTC))

    assert book(sekmet_server, engine, clinic, settings, first, at(9, 15))
    assert book(sekmet_server, engine, clinic, settings, second, at(11))
    booked = race(sekmet_server, engine, clinic, settings, racers)

    with FhirClient.from_settings(Settings.from_env(sekmet_server.env())) as client:
        appointments = live_appointments(client, locations)
        assert_nurse_rules_kept(clinic, appointments, chairs)
        assert booked == 1 and len(appointments) == 3
        starts = sorted(fs.appointment_times(a).start.astimezone(ZONE) for a in appointments)
        assert starts[0] == at(9, 15) and starts[2] == at(11)
        assert starts[1] in (at(10), at(10, 15))
        for appointment in appointments:
            for sid in fs.appointment_slot_ids(appointment):
                slot = client.read("Slot", sid)
                assert slot["status"] == "busy"
                assert fs.slot_holder(slot) == f"Appointment/{appointment['id']}"
    with engine.connect() as conn:  # our mirror names the same three Appointments
        mirrored = conn.execute(
            select(appointments_table.c.ehr_reference).where(
                appointments_table.c.status == "booked"
            )
        )
        assert {r for (r,) in mirrored} == {f"Appointment/{a['id']}" for a in appointments}
