"""Booking on a real FHIR server (SEKMET over HTTP, SMART Backend Services auth)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import requests
from sqlalchemy import Engine, select

from referral_service.adapters.db.tables import appointments
from referral_service.adapters.ehr import series_steps as steps
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrAuthError, EhrUnavailable
from referral_service.config import Settings
from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.fhir import scheduling as fs
from referral_service.runtime import book_referral, cancel_booking
from referral_service.services.booking.schedule import BookingOutcome
from referral_service.services.ehr.seed import seed_demo
from tests.support.sekmet import SekmetServer, start_sekmet, write_private_key

from .conftest import add_referrals, booking_request

pytestmark = pytest.mark.ehr
ALL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def one_run_clinic(chairs: int) -> Clinic:
    """Chairs with unique ids, open 09:00-11:00 daily: one 2-hour run per chair-day."""
    tag = uuid.uuid4().hex[:6]
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "chairs": [{"id": f"chair-{tag}-{i}", "name": f"Chair {i}"} for i in range(chairs)],
            "opening_hours": {day: {"open": "09:00", "close": "11:00"} for day in ALL_DAYS},
        }
    )


def tomorrow() -> date:
    return datetime.now(UTC).date() + timedelta(days=1)


def client_for(server: SekmetServer, **kwargs: object) -> FhirClient:
    settings = Settings.from_env(server.env())
    client = FhirClient.from_settings(settings)
    for name, value in kwargs.items():
        setattr(client, name, value)
    return client


def seeded(server: SekmetServer, chairs: int, days: int) -> tuple[Clinic, Settings, dict]:
    clinic = one_run_clinic(chairs)
    with client_for(server) as client:
        report = seed_demo(client, clinic, days=days, chairs=chairs, start=tomorrow())
    env = {**server.env(), "REFERRAL_EHR_SCHEDULES": ",".join(report["schedules"])}
    return clinic, Settings.from_env(env), report


def book(
    client: FhirClient, engine: Engine, clinic: Clinic, settings: Settings, referral_id: str
) -> BookingOutcome:
    now = datetime.now(UTC)
    return book_referral(
        booking_request(referral_id, now),
        clinic=clinic,
        engine=engine,
        ehr=client,
        settings=settings,
        now=now,
    )


def ours(client: FhirClient, referral_ids: list[str]) -> list[dict]:
    return [
        a
        for rid in referral_ids
        for a in client.search("Appointment", {"identifier": fs.appointment_token(rid)})
    ]


def slots_of(client: FhirClient, schedule_ids: list[str]) -> list[dict]:
    return [
        s
        for sid in schedule_ids
        for s in client.search("Slot", {"schedule": f"Schedule/{sid}", "_count": "200"})
    ]


def test_seed_is_idempotent(sekmet_server: SekmetServer) -> None:
    clinic = one_run_clinic(2)
    with client_for(sekmet_server) as client:
        first = seed_demo(client, clinic, days=3, chairs=2, start=tomorrow())
        again = seed_demo(client, clinic, days=3, chairs=2, start=tomorrow())
    assert first["slots_created"] == 2 * 3 * 8 and first["slots_existing"] == 0
    assert again["slots_created"] == 0 and again["slots_existing"] == 2 * 3 * 8
    assert again["schedules"] == first["schedules"]


def test_book_one_referral_then_cancel(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic, settings, report = seeded(sekmet_server, chairs=2, days=2)
    (rid,) = referral_ids(1)
    add_referrals(sqlite_engine, [rid], datetime.now(UTC))
    with client_for(sekmet_server) as client:
        outcome = book(client, sqlite_engine, clinic, settings, rid)
        assert outcome.booked and outcome.ehr_reference
        (appointment,) = ours(client, [rid])
        assert appointment["status"] == "booked"
        assert appointment["basedOn"][0]["reference"].endswith(f"/ServiceRequest/{rid}")
        assert f"Appointment/{appointment['id']}" == outcome.ehr_reference
        slot_ids = fs.appointment_times(appointment).slot_ids
        assert len(slot_ids) == 8
        for sid in slot_ids:
            slot = client.read("Slot", sid)
            assert slot["status"] == "busy" and fs.slot_holder(slot) == outcome.ehr_reference
        assert book(client, sqlite_engine, clinic, settings, rid) == outcome  # a retry
        assert len(ours(client, [rid])) == 1
        with sqlite_engine.connect() as conn:
            row = conn.execute(select(appointments)).mappings().one()
        assert row["ehr_reference"] == outcome.ehr_reference and row["status"] == "booked"
        assert cancel_booking(rid, engine=sqlite_engine, ehr=client, now=datetime.now(UTC))
        assert cancel_booking(rid, engine=sqlite_engine, ehr=client, now=datetime.now(UTC))
        assert client.read("Appointment", appointment["id"])["status"] == "cancelled"
        assert all(client.read("Slot", sid)["status"] == "free" for sid in slot_ids)


def test_slot_of_a_foreign_booked_appointment_is_not_taken(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    # SEKMET (like some EHRs) lets an Appointment reference a Slot still marked free.
    clinic, settings, report = seeded(sekmet_server, chairs=1, days=2)
    (rid,) = referral_ids(1)
    add_referrals(sqlite_engine, [rid], datetime.now(UTC))
    with client_for(sekmet_server) as client:
        slots = sorted(slots_of(client, report["schedules"]), key=lambda s: s["start"])
        client.create(
            {
                "resourceType": "Appointment",
                "status": "booked",
                "start": slots[2]["start"],
                "end": slots[2]["end"],
                "slot": [{"reference": f"Slot/{slots[2]['id']}"}],
                "participant": [
                    {
                        "actor": {"reference": f"Location/{report['locations'][0]}"},
                        "status": "accepted",
                    }
                ],
            }
        )
        outcome = book(client, sqlite_engine, clinic, settings, rid)
        assert outcome.booked and outcome.start == fs.parse_instant(slots[8]["start"], "day 2")
        first_day = [client.read("Slot", s["id"]) for s in slots[:8]]
        assert {s["status"] for s in first_day} == {"free"}  # what we held, we gave back


def test_two_concurrent_bookers_never_share_a_slot(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic, settings, report = seeded(sekmet_server, chairs=4, days=5)  # 20 chair-runs
    ids = referral_ids(40)
    add_referrals(sqlite_engine, ids, datetime.now(UTC))
    pending, lock, results = list(ids), threading.Lock(), {}

    def booker() -> None:
        with client_for(sekmet_server) as client:  # each booker its own client and token
            while True:
                with lock:
                    if not pending:
                        return
                    rid = pending.pop(0)
                try:
                    results[rid] = book(client, sqlite_engine, clinic, settings, rid).status
                except Exception as exc:  # recorded, so the assertion shows it
                    results[rid] = repr(exc)

    threads = [threading.Thread(target=booker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert Counter(results.values()) == {"booked": 20, "no-slot": 20}
    with client_for(sekmet_server) as client:
        appointments_ = ours(client, ids)
        booked = [a for a in appointments_ if a["status"] == "booked"]
        assert len(booked) == 20
        assert {a["status"] for a in appointments_} <= {"booked", "cancelled"}
        held = Counter(sid for a in booked for sid in fs.appointment_times(a).slot_ids)
        assert len(held) == 160 and set(held.values()) == {1}
        slots = slots_of(client, report["schedules"])
    assert len(slots) == 160
    holder_of = {a["id"]: set(fs.appointment_times(a).slot_ids) for a in booked}
    for slot in slots:
        assert slot["status"] == "busy"
        assert slot["id"] in holder_of[fs.slot_holder(slot).split("/")[-1]]


def test_smart_backend_services_token(sekmet_server: SekmetServer, tmp_path: Path) -> None:
    assert requests.get(f"{sekmet_server.base_url}/Slot", timeout=5).status_code == 401
    calls: list[tuple[str, int]] = []
    settings = Settings.from_env(sekmet_server.env())
    with FhirClient.from_settings(settings) as client:
        client.on_request = lambda i, s, t: calls.append((i, s))  # as the runtime sets it
        client.capabilities()
        next(client.search("Schedule", {"_count": "1"}), None)  # first page only
        next(client.search("Slot", {"_count": "1"}), None)
        token = client.auth.authorization().split()[1]  # type: ignore[union-attr]
    # One token for all three requests, and every request authorised.
    assert calls == [("token", 200), ("capabilities", 200), ("search", 200), ("search", 200)]
    scope = jwt.decode(token, options={"verify_signature": False})["scope"]
    assert scope.split() and all(s.startswith("system/") for s in scope.split())
    stranger = tmp_path / "stranger.pem"
    write_private_key(stranger)
    env = {**sekmet_server.env(), "REFERRAL_EHR_PRIVATE_KEY_FILE": str(stranger)}
    with (
        FhirClient.from_settings(Settings.from_env(env)) as client,
        pytest.raises(EhrAuthError, match="invalid_client|verification"),
    ):
        list(client.search("Slot"))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[SekmetServer]:
    """A server this test may stop and restart (its data dir persists across restarts)."""
    server = start_sekmet(tmp_path / "own-sekmet", smart=False)
    yield server
    server.stop()


def test_ehr_down_mid_booking_then_back(
    own_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic, settings, report = seeded(own_server, chairs=1, days=3)
    # Visit by visit (an EHR without transactions): the create and the Slot holds are apart.
    settings = dataclasses.replace(settings, ehr_transactions=False)
    first, second = referral_ids(2)
    add_referrals(sqlite_engine, [first, second], datetime.now(UTC))

    def stop_after_create(interaction: str, status: int, seconds: float) -> None:
        if interaction == "create" and status == 201:
            own_server.stop()  # the EHR dies between the Appointment and its Slots

    with client_for(own_server, on_request=stop_after_create, backoff=0.05) as client:
        with pytest.raises(EhrUnavailable):
            book(client, sqlite_engine, clinic, settings, first)
        with pytest.raises(EhrUnavailable):
            book(client, sqlite_engine, clinic, settings, second)
        own_server.start()
        client.on_request = None
        (left,) = ours(client, [first])  # the crash left our pending Appointment behind
        assert left["status"] == "pending"
        retried = book(client, sqlite_engine, clinic, settings, first)
        assert retried.booked
        (appointment,) = ours(client, [first])  # the retry finished it, no duplicate
        assert appointment["status"] == "booked"
        assert book(client, sqlite_engine, clinic, settings, second).booked
        assert retried.start < book(client, sqlite_engine, clinic, settings, second).start


def test_without_configured_schedules_only_infusion_schedules_are_used(
    own_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    clinic, _, report = seeded(own_server, chairs=1, days=1)
    (rid,) = referral_ids(1)
    add_referrals(sqlite_engine, [rid], datetime.now(UTC))
    with client_for(own_server) as client:
        mri = client.create(
            {
                "resourceType": "Schedule",
                "active": True,
                "serviceType": [{"text": "MRI"}],
                "actor": [{"reference": f"Location/{report['locations'][0]}"}],
            }
        )
        first = min(
            fs.parse_instant(s["start"], "slot") for s in slots_of(client, report["schedules"])
        )
        for i in range(8):  # a free MRI run two hours earlier than any infusion run
            start = first - timedelta(hours=2) + timedelta(minutes=15 * i)
            client.create(
                {
                    "resourceType": "Slot",
                    "status": "free",
                    "schedule": {"reference": f"Schedule/{mri['id']}"},
                    "start": fs.fhir_instant(start),
                    "end": fs.fhir_instant(start + timedelta(minutes=15)),
                }
            )
        settings = Settings.from_env(own_server.env())  # REFERRAL_EHR_SCHEDULES unset
        outcome = book(client, sqlite_engine, clinic, settings, rid)
        (appointment,) = ours(client, [rid])
        schedules = {
            client.read("Slot", sid)["schedule"]["reference"]
            for sid in fs.appointment_times(appointment).slot_ids
        }
    assert outcome.booked and outcome.start == first
    assert schedules == {f"Schedule/{report['schedules'][0]}"}


def test_range_search_reads_only_what_the_planner_needs_of_booked_appointments(
    sekmet_server: SekmetServer, sqlite_engine: Engine, referral_ids
) -> None:
    """The batch's Appointment search asks for `_elements` (SEKMET honours it inside a batch):
    no contained Patient, Slot list or order comes back, and the visit still loads its chair."""
    clinic, settings, report = seeded(sekmet_server, chairs=2, days=2)
    (rid,) = referral_ids(1)
    now = datetime.now(UTC)
    add_referrals(sqlite_engine, [rid], now)
    patient = {"resourceType": "Patient", "name": [{"family": "Doe"}], "birthDate": "1980-01-01"}
    request = dataclasses.replace(
        booking_request(rid, now), patient_ref="#patient", patient=patient
    )
    with client_for(sekmet_server) as client:
        outcome = book_referral(
            request, clinic=clinic, engine=sqlite_engine, ehr=client, settings=settings, now=now
        )
        assert outcome.booked
        (whole,) = ours(client, [rid])
        assert whole["contained"] and whole["slot"] and whole["basedOn"]  # all kept on the EHR
        opens = datetime.combine(tomorrow(), datetime.min.time(), clinic.zone)
        _, found = steps.search_range(
            client, report["schedules"], opens, opens, opens + timedelta(days=2)
        )
        chairs = {
            str(fs.schedule_chair(client.read("Schedule", sid))["reference"]): sid
            for sid in report["schedules"]
        }
    (seen,) = [a for a in found if a["id"] == whole["id"]]
    assert not {"contained", "slot", "basedOn", "description"} & set(seen)
    times = fs.appointment_times(whole)
    assert steps.load_rows(found, chairs, "another-referral", "unknown") == [
        {
            "chair_id": chairs[str(fs.appointment_chair(whole))],
            "protocol": "standard-infusion",
            "start": times.start,
            "end": times.end,
        }
    ]
