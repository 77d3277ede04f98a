"""The worker against a real EHR (SEKMET over HTTP): id-only notifications read the order and
what it references, a gap in event numbers reconciles by search, a periodic sweep catches what
was never sent, and outcomes go back to the EHR as a Task on the EHR's ServiceRequest."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from referral_service.adapters.db.tables import appointments, jobs, referrals
from referral_service.config import Settings
from referral_service.runtime import Runtime, utc_now
from referral_service.services.ehr import reconciliation
from referral_service.services.ehr.seed import seed_demo
from referral_service.services.ehr.writeback import TASK_SYSTEM
from referral_service.services.jobs import reconcile_periodically
from referral_service.worker import Worker

from .conftest import AUTH, SECRET, notification
from .ehr_orders import place_order

pytestmark = pytest.mark.ehr


@pytest.fixture
def category() -> str:
    """Each test's orders carry their own category, so other tests' orders are not ours."""
    return f"headache-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ehr_runtime(sekmet_server, database_url, engine, category):  # type: ignore[no-untyped-def]
    env = {
        **sekmet_server.env(),
        "REFERRAL_DATABASE_URL": database_url,
        "REFERRAL_WEBHOOK_SECRET": SECRET,
        "REFERRAL_INTAKE_FILTER_CATEGORY": category,
    }
    runtime = Runtime(Settings.from_env(env), engine)
    runtime.now = utc_now
    return runtime


@pytest.fixture
def ehr_client(ehr_runtime):  # type: ignore[no-untyped-def]
    return ehr_runtime.ehr_client


def webhook_client(runtime):  # type: ignore[no-untyped-def]
    from referral_service.api.app import create_app

    return create_app(runtime=runtime).test_client()


def referral_rows(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(referrals.c.id, referrals.c.sender, referrals.c.source)).all()


def test_id_only_event_reads_the_order_books_it_and_writes_the_task_back(
    ehr_runtime, ehr_client, engine, category
):
    seed_demo(ehr_client, ehr_runtime.clinic, days=10, chairs=2, start=datetime.now(UTC).date())
    order = place_order(ehr_client, category)
    focus = f"{ehr_runtime.settings.ehr_base_url}/ServiceRequest/{order['id']}"
    client = webhook_client(ehr_runtime)
    response = client.post(
        "/webhooks/fhir", data=json.dumps(notification(number=1, focus=focus)), headers=AUTH
    )
    assert response.status_code == 202
    Worker(ehr_runtime).run_until_idle()

    [(referral_id, sender, source)] = referral_rows(engine)
    assert (sender, source) == ("ehr", "webhook")
    with engine.connect() as conn:
        supporting = conn.execute(
            select(referrals.c.supporting).where(referrals.c.id == referral_id)
        ).scalar_one()
    assert {r["resourceType"] for r in supporting} == {"Patient", "Observation"}
    tasks = list(ehr_client.search("Task", {"focus": f"ServiceRequest/{order['id']}"}))
    assert len(tasks) == 1, tasks
    task = tasks[0]
    assert task["businessStatus"]["coding"][0]["code"] == "booked"
    assert task["identifier"][0]["system"] == TASK_SYSTEM
    appointment = ehr_client.read(
        "Appointment", task["output"][0]["valueReference"]["reference"].split("/")[1]
    )
    assert appointment["status"] == "booked"
    assert appointment["participant"][0]["actor"]["reference"] == order["subject"]["reference"]
    # The EHR's chart links its own order to the infusion (issue 16, item 5) ...
    assert appointment["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]
    linked = list(ehr_client.search("Appointment", {"based-on": f"ServiceRequest/{order['id']}"}))
    assert [found["id"] for found in linked] == [appointment["id"]]
    # ... while our mirror keeps naming our own copy of the order.
    with engine.connect() as conn:
        mirror = conn.execute(select(appointments.c.resource)).scalar_one()
    assert mirror["basedOn"][0]["reference"].endswith(f"ServiceRequest/{referral_id}")


def test_a_gap_in_event_numbers_reconciles_by_search(ehr_runtime, ehr_client, engine, category):
    order = place_order(ehr_client, category)
    client = webhook_client(ehr_runtime)
    handshake = notification(kind="handshake", number=None, since=0)
    heartbeat = notification(kind="heartbeat", number=None, since=3)  # 3 events we never got
    assert (
        client.post("/webhooks/fhir", data=json.dumps(handshake), headers=AUTH).status_code == 202
    )
    Worker(ehr_runtime).run_until_idle()
    assert referral_rows(engine) == []
    assert (
        client.post("/webhooks/fhir", data=json.dumps(heartbeat), headers=AUTH).status_code == 202
    )
    Worker(ehr_runtime).run_until_idle()
    rows = referral_rows(engine)
    assert len(rows) == 1
    with engine.connect() as conn:
        resource = conn.execute(select(referrals.c.resource)).scalar_one()
    assert {
        "system": f"{ehr_runtime.settings.ehr_base_url}/ServiceRequest",
        "value": order["id"],
    } in resource["identifier"]


def test_the_periodic_sweep_takes_what_was_never_sent_and_schedules_the_next(
    ehr_runtime, ehr_client, engine, category
):
    now = utc_now()
    with ehr_runtime.unit_of_work() as uow:
        reconciliation.start_cursor(uow, now - timedelta(minutes=1))
        reconcile_periodically(uow, now, minutes=10)
    place_order(ehr_client, category)
    assert Worker(ehr_runtime).run_until_idle() == 0  # the sweep waits for its period
    ehr_runtime.now = lambda: now + timedelta(minutes=11)
    Worker(ehr_runtime).run_until_idle()
    assert len(referral_rows(engine)) == 1
    with engine.connect() as conn:
        sweeps = conn.execute(
            select(jobs.c.status, jobs.c.run_after).where(jobs.c.kind == "ehr-reconcile")
        ).all()
    assert sorted(status for status, _ in sweeps) == ["done", "pending"]
