"""A repeat course booked at once on the clinic EHR (SEKMET, clinic file `repeat.book: true`):
through intake and the worker the repeat visit is booked in its due window in a second
transaction, holds its Slots, is listed in the Task's output as the repeat course, and revoking
the referral cancels it and frees its Slots; a due window with no free Slot books the first
visit and records the repeat as due (no third write to the EHR)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.ehr import repeat_steps
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.slots import infusion_schedules
from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.domain.scheduling.booking import BookingOutcome, BookingRequest
from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.domain.scheduling.planner import RepeatDue
from referral_service.fhir import scheduling as fs
from referral_service.runtime import Runtime, book_referral
from referral_service.services.ehr.seed import seed_demo
from referral_service.worker import Worker
from tests.integration.ehr.conftest import add_referrals, booking_request
from tests.support.referrals import FHIR_JSON, eligible_referral, variant
from tests.support.sekmet import SekmetServer

pytestmark = pytest.mark.ehr
ZONE = ZoneInfo("America/New_York")
ALL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def repeat_clinic() -> Clinic:
    """One chair of its own, open 09:00-11:00 daily (one 2-hour run a day); the standard
    infusion repeated a week later, +- 1 day, booked at once."""
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "chairs": [{"id": f"chair-{uuid.uuid4().hex[:6]}", "name": "Chair 1"}],
            "opening_hours": {day: {"open": "09:00", "close": "11:00"} for day in ALL_DAYS},
            "protocols": {
                "standard-infusion": {
                    "minutes": 120,
                    "drugs": ["iv-fluids", "metoclopramide", "ketorolac"],
                    "repeat": {"every_days": 7, "tolerance_days": 1, "book": True},
                },
                "dhe": {"minutes": 120, "drugs": ["dhe"]},
                "eptinezumab": {"minutes": 60, "drugs": ["eptinezumab"]},
            },
        }
    )


def first_day() -> date:
    return datetime.now(UTC).date() + timedelta(days=1)


class Service:
    """The service over SQLite with SEKMET as its EHR (one seeded chair), and its API."""

    def __init__(
        self,
        server: SekmetServer,
        tmp_path: Path,
        transactions: str = "on",
        clinic: Clinic | None = None,
        days: int = 12,
    ) -> None:
        self.clinic = clinic or repeat_clinic()
        base = Settings.from_env(server.env())
        with FhirClient.from_settings(base) as client:
            report = seed_demo(client, self.clinic, days=days, chairs=1, start=first_day())
        self.schedule = report["schedules"][0]
        env = {
            **server.env(),
            "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'referrals.db'}",
            "REFERRAL_EHR_SCHEDULES": self.schedule,
            "REFERRAL_EHR_WRITEBACK": "off",
            "REFERRAL_EHR_TRANSACTIONS": transactions,
        }
        self.settings = dataclasses.replace(Settings.from_env(env), job_backoff_base_seconds=0)
        self.engine = make_engine(self.settings.database_url)
        migrate.upgrade(self.engine)
        self.runtime = Runtime(self.settings, self.engine)
        self.runtime.clinic = self.clinic
        self.api = create_app(runtime=self.runtime).test_client()

    def refer(self, identifier: str) -> str:
        response = self.api.post(
            "/fhir/ServiceRequest",
            json=eligible_referral(identifier),
            headers={"Content-Type": FHIR_JSON},
        )
        assert response.status_code == 201, response.get_data(as_text=True)[:300]
        Worker(self.runtime).run_until_idle()
        return str(response.get_json()["id"])

    def task(self, referral_id: str) -> dict[str, Any]:
        bundle = self.api.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
        return dict(bundle["entry"][0]["resource"])

    def ours(self, referral_id: str) -> list[dict[str, Any]]:
        with FhirClient.from_settings(self.settings) as client:
            found = client.search("Appointment", {"identifier": fs.appointment_token(referral_id)})
            return sorted(found, key=lambda a: a["start"])

    def book(self, client: FhirClient, request: BookingRequest, now: datetime) -> BookingOutcome:
        """The booking use case run once on `client`, as the worker's book job runs it."""
        return book_referral(
            request,
            clinic=self.clinic,
            engine=self.engine,
            ehr=client,
            settings=self.settings,
            now=now,
        )

    def slot(self, slot_id: str) -> dict[str, Any]:
        with FhirClient.from_settings(self.settings) as client:
            return client.read("Slot", slot_id)

    def book_counting(self) -> tuple[str, BookingOutcome, list[str]]:
        """A new referral booked once, with the EHR interactions it cost (tokens aside)."""
        referral_id = f"ref-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        add_referrals(self.engine, [referral_id], now)
        interactions: list[str] = []
        with FhirClient.from_settings(self.settings) as client:
            client.on_request = lambda interaction, status, seconds: (
                interaction != "token" and interactions.append(interaction)
            )
            outcome = self.book(client, booking_request(referral_id, now), now)
        return referral_id, outcome, interactions


@pytest.fixture(params=["on", "off"])
def service(
    sekmet_server: SekmetServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Service]:
    """With EHR transactions, and without (visit by visit, compensating cancels)."""
    service = Service(sekmet_server, tmp_path, request.param)
    yield service
    service.engine.dispose()


def local_day(appointment: dict[str, Any]) -> date:
    return fs.parse_instant(appointment["start"], "start").astimezone(ZONE).date()


def test_the_repeat_is_booked_on_the_ehr_listed_in_the_task_and_cancel_frees_it(
    service: Service,
) -> None:
    identifier = f"repeat-{uuid.uuid4().hex[:8]}"
    referral_id = service.refer(identifier)

    first, repeat = service.ours(referral_id)
    assert (first["status"], repeat["status"]) == ("booked", "booked")
    assert repeat["description"] == "repeat course" and fs.appointment_visit(repeat) == 2
    assert local_day(repeat) - local_day(first) in (timedelta(days=d) for d in (6, 7, 8))
    repeat_slots = fs.appointment_slot_ids(repeat)
    assert len(repeat_slots) == 8
    for sid in repeat_slots:
        slot = service.slot(sid)
        assert slot["status"] == "busy"
        assert fs.slot_holder(slot) == f"Appointment/{repeat['id']}"

    outputs = service.task(referral_id)["output"]
    assert [o["type"]["text"] for o in outputs] == ["appointment", "repeat course"]
    with service.runtime.unit_of_work(read_only=True) as uow:
        rows = uow.appointments.series(referral_id)
    assert [r["ehr_reference"] for r in rows] == [f"Appointment/{a['id']}" for a in (first, repeat)]
    assert outputs[1]["valueReference"]["reference"] == f"Appointment/{rows[1]['id']}"

    revoked = variant(eligible_referral(identifier), id=referral_id, status="revoked")
    response = service.api.put(
        f"/fhir/ServiceRequest/{referral_id}",
        json=revoked,
        headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200
    Worker(service.runtime).run_until_idle()
    assert {a["status"] for a in service.ours(referral_id)} == {"cancelled"}
    for sid in repeat_slots:
        slot = service.slot(sid)
        assert slot["status"] == "free" and fs.slot_holder(slot) is None


def test_a_due_window_without_a_free_slot_leaves_the_repeat_due(service: Service) -> None:
    # Another system takes every Slot from the fifth day on: the repeat's whole window.
    with FhirClient.from_settings(service.settings) as client:
        slots = client.search("Slot", {"schedule": f"Schedule/{service.schedule}", "_count": "500"})
        later = [s for s in slots if local_day(s) >= first_day() + timedelta(days=4)]
        assert later
        for slot in later:
            client.update(fs.held_slot(slot, "Appointment/someone-else"))

    referral_id = service.refer(f"repeat-due-{uuid.uuid4().hex[:8]}")
    (first,) = service.ours(referral_id)
    assert first["status"] == "booked" and first.get("description") != "repeat course"
    outputs = service.task(referral_id)["output"]
    assert [o["type"]["text"] for o in outputs] == ["appointment", "repeat course due"]
    due_opens = datetime.fromisoformat(outputs[1]["valuePeriod"]["start"]).astimezone(ZONE)
    assert due_opens.date() == local_day(first) + timedelta(days=6)


def test_booking_with_its_repeat_costs_the_ehr_two_requests_more(service: Service) -> None:
    referral_id, outcome, interactions = service.book_counting()
    assert outcome.booked
    assert [a.get("description") for a in service.ours(referral_id)] == [None, "repeat course"]
    if service.settings.ehr_transactions:
        # The Schedule read; the first course: a range search batch and a transaction; the
        # repeat: a search batch of its due window and a transaction.
        assert interactions == ["read", "transaction", "transaction", "transaction", "transaction"]
    else:  # visit by visit (create, hold each Slot, check, book) for each; no transactions
        assert interactions.count("transaction") == 2  # the two search batches


def test_booking_the_repeat_again_keeps_the_one_booked_and_leaks_no_slot(
    service: Service,
) -> None:
    if not service.settings.ehr_transactions:
        pytest.skip("a lost reply is recovered by the conditional create in the transaction")
    referral_id = f"ref-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    add_referrals(service.engine, [referral_id], now)
    request = booking_request(referral_id, now)
    with FhirClient.from_settings(service.settings) as client:
        assert service.book(client, request, now).booked
        first, repeat = service.ours(referral_id)
        day = local_day(first)
        # The same step once more, as after a reply lost on the way back.
        again = repeat_steps.book_repeat(
            client,
            service.clinic,
            infusion_schedules(client, (service.schedule,)),
            request,
            service.clinic.protocol("standard-infusion"),
            RepeatDue(day + timedelta(days=6), day + timedelta(days=8)),
            [fs.parse_instant(first["start"], "start")],
            transactions=True,
        )
        assert [a["id"] for a in again] == [repeat["id"]]
        busy = list(
            client.search(
                "Slot",
                {"schedule": f"Schedule/{service.schedule}", "status": "busy", "_count": "500"},
            )
        )
        holders = {fs.slot_holder(s) for s in busy}
    assert [a["status"] for a in service.ours(referral_id)] == ["booked", "booked"]
    assert holders == {f"Appointment/{first['id']}", f"Appointment/{repeat['id']}"}
    assert len(busy) == 16  # eight 15-minute Slots each; none left held by the second try


def test_a_repeat_slot_taken_before_its_transaction_leaves_it_due_and_holds_nothing(
    service: Service,
) -> None:
    if not service.settings.ehr_transactions:
        pytest.skip("the race between the due window's search and its transaction")
    referral_id = f"ref-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    add_referrals(service.engine, [referral_id], now)
    rival = FhirClient.from_settings(service.settings)
    taken: list[str] = []
    batches: list[str] = []

    def take_the_window(interaction: str, status: int, seconds: float) -> None:
        if interaction != "transaction":
            return
        batches.append(interaction)
        if len(batches) == 3:  # the due window's search: another system takes its Slots
            schedule = f"Schedule/{service.schedule}"
            free = list(rival.search("Slot", {"schedule": schedule, "status": "free"}))
            for slot in free:
                if local_day(slot) >= first_day() + timedelta(days=4):
                    rival.update(fs.held_slot(slot, "Appointment/someone-else"))
                    taken.append(str(slot["id"]))

    with FhirClient.from_settings(service.settings) as client:
        client.on_request = take_the_window
        outcome = service.book(client, booking_request(referral_id, now), now)
    rival.close()
    assert outcome.booked and taken and len(batches) == 4  # the repeat's transaction failed
    (first,) = service.ours(referral_id)
    with service.runtime.unit_of_work(read_only=True) as uow:
        rows = uow.appointments.series(referral_id)
    assert [r["status"] for r in rows] == ["booked", "proposed"]
    for sid in taken:
        assert fs.slot_holder(service.slot(sid)) == "Appointment/someone-else"
