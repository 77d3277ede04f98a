"""A placer cancels through its Task a referral the service booked on the clinic EHR (SEKMET
over real HTTP): the Appointment there is cancelled and its Slots freed, as a revoke does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from referral_service.adapters.db.tables import appointments
from referral_service.config import Settings
from referral_service.fhir import scheduling as fs
from referral_service.runtime import Runtime, utc_now
from referral_service.services.ehr.seed import seed_demo
from referral_service.worker import Worker
from tests.integration.push.placer import Placer

pytestmark = pytest.mark.ehr


@pytest.fixture
def runtime(sekmet_server, database_url, engine):  # type: ignore[no-untyped-def]
    """The app's runtime, booking on the clinic EHR (overrides tests/conftest.py's)."""
    env = {**sekmet_server.env(), "REFERRAL_DATABASE_URL": database_url}
    runtime = Runtime(Settings.from_env(env), engine)
    runtime.now = utc_now
    seed_demo(runtime.ehr_client, runtime.clinic, days=10, chairs=2, start=datetime.now(UTC).date())
    return runtime


def test_a_cancel_through_the_task_cancels_the_ehr_appointment(
    over_http,
    runtime,
) -> None:
    placer = Placer(over_http("er-a"), case="ehr-cancel")
    task_id = placer.refer()
    Worker(runtime).run_until_idle()
    task = placer.ask("GET", f"/fhir/Task/{task_id}")
    assert task["businessStatus"]["text"] == "booked", task
    ehr = runtime.ehr_client
    with runtime.engine.connect() as conn:
        ehr_reference = conn.execute(select(appointments.c.ehr_reference)).scalar_one()
    on_ehr = ehr.read("Appointment", ehr_reference.split("/")[1])
    assert on_ehr["status"] == "booked"
    # A referral from elsewhere: the EHR's Appointment names our copy of the order.
    assert on_ehr["basedOn"][0]["reference"].endswith(placer.made["referral"])
    slot_ids = fs.appointment_times(on_ehr).slot_ids
    assert slot_ids and all(ehr.read("Slot", sid)["status"] == "busy" for sid in slot_ids)

    cancel = {**task, "status": "cancelled", "statusReason": {"text": "treated elsewhere"}}
    version = task["meta"]["versionId"]
    placer.ask("PUT", f"/fhir/Task/{task_id}", cancel, **{"If-Match": f'W/"{version}"'})
    Worker(runtime).run_until_idle()
    assert ehr.read("Appointment", on_ehr["id"])["status"] == "cancelled"
    assert all(ehr.read("Slot", sid)["status"] == "free" for sid in slot_ids)
    local = placer.ask("GET", f"/fhir/Appointment?based-on={placer.made['referral']}")
    assert [e["resource"]["status"] for e in local["entry"]] == ["cancelled"]
    assert placer.ask("GET", f"/fhir/Task/{task_id}")["status"] == "cancelled"
