"""Faults with a real EHR (SEKMET over HTTP) and PostgreSQL (issue 18): a booking job that
outlives its lease while another worker takes it over, the sweep of leaked Slot holds, and
decisions that never wait for the EHR while it is down."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from referral_service.adapters.db import migrate, outbox
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.tables import jobs, referral_events
from referral_service.adapters.ehr import slots as eb
from referral_service.adapters.ehr.client import FhirClient
from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.fhir import scheduling as fs
from referral_service.observability import metrics
from referral_service.runtime import Runtime
from referral_service.services.ehr.seed import seed_demo
from referral_service.services.jobs import JobKind
from referral_service.worker import Worker
from referral_service.worker_lanes import DECISIONS, EHR_WORK, WorkerLanes
from tests.integration.ehr.test_ehr_booking_sekmet import one_run_clinic, tomorrow
from tests.support.referrals import FHIR_JSON, ICD10, eligible_referral
from tests.support.sekmet import SekmetServer, start_sekmet

pytestmark = pytest.mark.ehr


class Clinic:
    """The service over PostgreSQL with SEKMET as its EHR: settings, runtimes, an API client."""

    def __init__(self, server: SekmetServer, database_url: str, chairs: int, days: int) -> None:
        self.server = server
        self.clinic = one_run_clinic(chairs)
        base = Settings.from_env(server.env())
        with FhirClient.from_settings(base) as client:
            report = seed_demo(client, self.clinic, days=days, chairs=chairs, start=tomorrow())
        self.schedules: list[str] = report["schedules"]
        env = {
            **server.env(),
            "REFERRAL_DATABASE_URL": database_url,
            "REFERRAL_EHR_SCHEDULES": ",".join(self.schedules),
            "REFERRAL_EHR_WRITEBACK": "off",
        }
        self.settings = dataclasses.replace(
            Settings.from_env(env), job_backoff_base_seconds=0.2, worker_listen=True
        )
        self.engine = make_engine(database_url)
        migrate.upgrade(self.engine)
        self.api = create_app(runtime=self.runtime()).test_client()

    def runtime(self, **changes: Any) -> Runtime:
        runtime = Runtime(dataclasses.replace(self.settings, **changes), self.engine)
        runtime.clinic = self.clinic
        return runtime

    def refer(self, resource: dict[str, Any]) -> str:
        response = self.api.post(
            "/fhir/ServiceRequest", json=resource, headers={"Content-Type": FHIR_JSON}
        )
        assert response.status_code == 201, response.get_data(as_text=True)[:300]
        return str(response.get_json()["id"])

    def business_status(self, referral_id: str) -> str:
        bundle = self.api.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
        return str(bundle["entry"][0]["resource"]["businessStatus"]["coding"][0]["code"])

    def ehr(self) -> FhirClient:
        return FhirClient.from_settings(self.settings)

    def our_appointments(self, client: FhirClient, referral_id: str) -> list[dict[str, Any]]:
        token = fs.appointment_token(referral_id)
        return [
            a
            for a in client.search("Appointment", {"identifier": token})
            if a.get("status") not in ("cancelled", "entered-in-error")
        ]

    def held_slots(self, client: FhirClient) -> dict[str, str]:
        """Busy Slot id -> the Appointment holding it, over the seeded schedules."""
        schedules = ",".join(f"Schedule/{sid}" for sid in self.schedules)
        found = client.search("Slot", {"schedule": schedules, "status": "busy", "_count": "500"})
        return {str(s["id"]): str(fs.slot_holder(s)) for s in found if fs.slot_holder(s)}


@pytest.fixture
def clinic(sekmet_server: SekmetServer, fresh_postgres_url: str) -> Iterator[Clinic]:
    service = Clinic(sekmet_server, fresh_postgres_url, chairs=3, days=3)
    yield service
    service.engine.dispose()


class StallingClient(FhirClient):
    """The real client, stalled once right after it booked an Appointment: the worker then
    outlives its lease before it can record the outcome (a GC pause, a frozen VM)."""

    stalled: threading.Event
    resume: threading.Event

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        result = super().update(resource, if_match=if_match)
        self._stall_once_booked([result])
        return result

    def transaction(self, bundle: dict[str, Any], *, repeatable: bool = False) -> dict[str, Any]:
        """A series is booked in one transaction Bundle (REFERRAL_EHR_TRANSACTIONS)."""
        result = super().transaction(bundle, repeatable=repeatable)
        self._stall_once_booked([e.get("resource") or {} for e in result.get("entry", [])])
        return result

    def _stall_once_booked(self, written: list[dict[str, Any]]) -> None:
        booked = any(
            r.get("resourceType") == "Appointment" and r.get("status") == "booked" for r in written
        )
        if booked and not self.stalled.is_set():
            self.stalled.set()
            assert self.resume.wait(60)


def test_a_booking_that_outlives_its_lease_books_once_and_its_commit_is_refused(
    clinic: Clinic,
) -> None:
    referral_id = clinic.refer(eligible_referral(f"lease-{uuid.uuid4().hex[:8]}"))
    assert Worker(clinic.runtime(), lane=DECISIONS).run_until_idle() == 1
    assert clinic.business_status(referral_id) == "eligible"

    stalled_runtime = clinic.runtime(job_lease_seconds=2, job_lease_renew_seconds=0)
    stalling = StallingClient.from_settings(stalled_runtime.settings)
    assert isinstance(stalling, StallingClient)
    stalling.stalled, stalling.resume = threading.Event(), threading.Event()
    stalled_runtime.ehr_client = stalling
    lost_before = metrics.LEASES_LOST.labels(kind="book")._value.get()
    first = threading.Thread(
        target=Worker(stalled_runtime, worker_id="worker-a", lane=EHR_WORK).run_once
    )
    first.start()
    try:
        assert stalling.stalled.wait(60)
        time.sleep(2.5)  # worker A's lease runs out while it stalls
        taker = Worker(clinic.runtime(), worker_id="worker-b", lane=EHR_WORK)
        assert taker.run_once() is True
        assert clinic.business_status(referral_id) == "booked"
    finally:
        stalling.resume.set()
        first.join(60)

    with clinic.engine.connect() as conn:
        book = conn.execute(select(jobs).where(jobs.c.kind == "book")).mappings().one()
        booked_events = conn.execute(
            select(referral_events.c.id).where(
                referral_events.c.referral_id == referral_id, referral_events.c.kind == "booked"
            )
        ).all()
    assert (book["status"], book["attempts"], book["locked_by"]) == ("done", 2, "worker-b")
    assert len(booked_events) == 1  # worker A's outcome was refused
    assert metrics.LEASES_LOST.labels(kind="book")._value.get() == lost_before + 1
    with clinic.ehr() as client:
        (appointment,) = clinic.our_appointments(client, referral_id)
        assert appointment["status"] == "booked"
        holder = f"Appointment/{appointment['id']}"
        held_for_it = {sid for sid, h in clinic.held_slots(client).items() if h == holder}
        assert held_for_it == set(fs.appointment_slot_ids(appointment))  # no other hold kept


def test_the_hold_sweep_frees_holds_no_appointment_lists(clinic: Clinic) -> None:
    referral_id = clinic.refer(eligible_referral(f"sweep-{uuid.uuid4().hex[:8]}"))
    runtime = clinic.runtime()
    Worker(runtime, lane=DECISIONS).run_until_idle()
    Worker(runtime, lane=EHR_WORK).run_until_idle()
    assert clinic.business_status(referral_id) == "booked"
    with clinic.ehr() as client:
        (appointment,) = clinic.our_appointments(client, referral_id)
        holder = f"Appointment/{appointment['id']}"
        booked = set(fs.appointment_slot_ids(appointment))
        schedules = ",".join(f"Schedule/{sid}" for sid in clinic.schedules)
        query = {"schedule": schedules, "status": "free", "_count": "3"}
        free = list(itertools.islice(client.search("Slot", query), 3))
        leaked = [eb.hold_slot(client, slot, holder) for slot in free[:2]]  # abandoned holds
        gone = eb.hold_slot(client, free[2], "Appointment/no-such-appointment")
        assert all(leaked) and gone is not None
        freed_before = _freed()

        with clinic.engine.begin() as conn:
            outbox.enqueue(conn, JobKind.EHR_HOLD_SWEEP, now=runtime.now(), max_attempts=3)
        assert Worker(runtime, lane=EHR_WORK).run_until_idle() == 1

        held = clinic.held_slots(client)
        assert {sid for sid, h in held.items() if h == holder} == booked
        assert str(free[2]["id"]) not in held
        freed = _freed()
        assert freed["not-listed"] == freed_before["not-listed"] + 2
        assert freed["appointment-gone"] == freed_before["appointment-gone"] + 1
    with clinic.engine.connect() as conn:
        sweeps = (
            conn.execute(select(jobs).where(jobs.c.kind == JobKind.EHR_HOLD_SWEEP)).mappings().all()
        )
    assert sorted(job["status"] for job in sweeps) == ["done", "pending"]  # the next is queued


def _freed() -> dict[str, float]:
    labels = ("not-listed", "appointment-gone")
    return {r: metrics.EHR_HOLDS_FREED.labels(reason=r)._value.get() for r in labels}


def red_flag(identifier: str) -> dict[str, Any]:
    resource = eligible_referral(identifier)
    thunderclap = {"system": ICD10, "code": "G44.53", "display": "Thunderclap headache"}
    resource["reasonCode"] = [{"coding": [thunderclap]}]
    return resource


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[SekmetServer]:
    server = start_sekmet(tmp_path / "sekmet")
    yield server
    server.stop()


@pytest.mark.serial  # wall-clock bound: `make test` runs it alone, after the parallel tests
def test_decisions_never_wait_for_the_ehr(own_server: SekmetServer, fresh_postgres_url: str):
    clinic = Clinic(own_server, fresh_postgres_url, chairs=4, days=5)
    lanes = WorkerLanes(clinic.runtime())
    running = threading.Thread(target=lanes.run_forever, daemon=True)
    running.start()
    try:
        own_server.stop()  # the EHR is down before the referrals arrive
        tag = uuid.uuid4().hex[:8]
        red = {clinic.refer(red_flag(f"red-{tag}-{i}")) for i in range(3)}
        plain = {clinic.refer(eligible_referral(f"plain-{tag}-{i}")) for i in range(17)}
        latencies = _decision_latencies(clinic, red | plain, within=10.0)
        assert max(latencies.values()) < 2.0, latencies
        assert {clinic.business_status(r) for r in red} == {"emergency-redirect"}

        own_server.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if {clinic.business_status(r) for r in plain} == {"booked"}:
                break
            time.sleep(0.5)
        assert {clinic.business_status(r) for r in plain} == {"booked"}
    finally:
        lanes.stop()
        running.join(30)
        clinic.engine.dispose()


def _decision_latencies(clinic: Clinic, ids: set[str], within: float) -> dict[str, float]:
    """Seconds from each referral's receipt to its recorded decision (the `evaluated` event)."""
    from referral_service.adapters.db.tables import referrals

    deadline = time.monotonic() + within
    while True:
        with clinic.engine.connect() as conn:
            rows = conn.execute(
                select(referrals.c.id, referrals.c.received_at, referral_events.c.at)
                .join(referral_events, referral_events.c.referral_id == referrals.c.id)
                .where(referral_events.c.kind == "evaluated", referrals.c.id.in_(ids))
            ).all()
        if len(rows) == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(rows) == len(ids), f"{len(ids) - len(rows)} referrals still undecided"
    return {rid: (_utc(at) - _utc(received)).total_seconds() for rid, received, at in rows}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
