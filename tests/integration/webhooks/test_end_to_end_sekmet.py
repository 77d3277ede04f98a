"""End to end over real HTTP: `referral-service serve` as a subprocess, SEKMET as the EHR.
`ehr seed-demo`, `ehr subscribe`, then a physician's order created on SEKMET ends as a booked
Appointment and a Task on SEKMET, with no request made to the service by the test."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.headers import etag
from referral_service.config import Settings
from referral_service.services.ehr.subscriptions import desired_subscription, webhook_endpoint
from tests.support.sekmet import SekmetServer
from tests.support.service import free_port

from .conftest import SECRET
from .ehr_orders import place_order

pytestmark = pytest.mark.ehr
CLI = str(Path(sys.executable).with_name("referral-service"))


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service_env(sekmet_server: SekmetServer, tmp_path: Path) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        **sekmet_server.env(),
        "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}",
        "REFERRAL_WEBHOOK_SECRET": SECRET,
        "REFERRAL_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "REFERRAL_INTAKE_FILTER_CATEGORY": f"headache-{uuid.uuid4().hex[:8]}",
        "REFERRAL_TEST_PORT": str(port),
    }


@pytest.fixture
def running_service(service_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    port = service_env["REFERRAL_TEST_PORT"]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", port, "--workers", "1"],
            env=service_env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("the service", lambda: _healthy(service_env["REFERRAL_PUBLIC_URL"], process), 30)
        yield log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(base_url: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the service exited with {process.returncode}")
    try:
        return requests.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_an_order_signed_in_the_ehr_is_booked_with_no_request_to_the_service(
    service_env: dict[str, str], running_service: Path, tmp_path: Path
) -> None:
    seeded = run_cli(service_env, "ehr", "seed-demo", "--days", "10", "--chairs", "2")
    assert seeded.returncode == 0, seeded.stderr
    subscribed = run_cli(service_env, "ehr", "subscribe")
    assert subscribed.returncode == 0, subscribed.stderr
    report = json.loads(subscribed.stdout)
    assert (report["action"], report["mode"]) == ("created", "backport")
    assert SECRET not in subscribed.stdout

    def active() -> bool:
        status = run_cli(service_env, "ehr", "subscribe", "--status")
        return status.returncode == 0 and json.loads(status.stdout)["status"] == "active"

    wait_for("the Subscription to turn active", active, 30)
    again = json.loads(run_cli(service_env, "ehr", "subscribe").stdout)
    assert (again["action"], again["subscription"]) == ("unchanged", report["subscription"])

    ehr = FhirClient.from_settings(Settings.from_env(service_env))
    order = place_order(ehr, service_env["REFERRAL_INTAKE_FILTER_CATEGORY"])
    task = wait_for("a booked Task on the EHR", lambda: _booked_task(ehr, order["id"]))
    appointment_id = task["output"][0]["valueReference"]["reference"].split("/")[-1]
    appointment = ehr.read("Appointment", appointment_id)
    assert appointment["status"] == "booked"
    assert appointment["participant"][0]["actor"]["reference"] == order["subject"]["reference"]

    switch_off(ehr, report["subscription"])
    with sqlite3.connect(tmp_path / "service.db") as db:
        assert db.execute("SELECT sender, source FROM referrals").fetchall() == [("ehr", "webhook")]
        assert db.execute("SELECT count(*) FROM appointments").fetchone() == (1,)
    logs = running_service.read_text(errors="replace")
    assert "Testperson" not in logs and order["identifier"][0]["value"] not in logs


def test_a_classic_rest_hook_delivery_is_booked_too(
    service_env: dict[str, str], running_service: Path, tmp_path: Path
) -> None:
    """EHRs without topics: a classic R4 rest-hook that PUTs the order to the webhook."""
    assert run_cli(service_env, "ehr", "seed-demo", "--days", "10", "--chairs", "2").returncode == 0
    settings = Settings.from_env(service_env)
    ehr = FhirClient.from_settings(settings)
    endpoint = webhook_endpoint(settings, None)
    subscription = ehr.create(desired_subscription(settings, endpoint, None))
    wait_for("the rest-hook to turn active", lambda: _status(ehr, subscription) == "active", 30)
    order = place_order(ehr, service_env["REFERRAL_INTAKE_FILTER_CATEGORY"])
    wait_for("a booked Task on the EHR", lambda: _booked_task(ehr, order["id"]))
    switch_off(ehr, f"Subscription/{subscription['id']}")
    with sqlite3.connect(tmp_path / "service.db") as db:
        assert db.execute("SELECT count(*) FROM referrals").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM appointments").fetchone() == (1,)


def _status(ehr: FhirClient, subscription: dict[str, Any]) -> str:
    return str(ehr.read("Subscription", subscription["id"]).get("status"))


def switch_off(ehr: FhirClient, reference: str) -> None:
    """Leave the shared EHR without a Subscription that posts to a service about to stop."""
    current = ehr.read("Subscription", reference.split("/")[-1])
    ehr.update({**current, "status": "off"}, if_match=etag(current))


def _booked_task(ehr: FhirClient, order_id: str) -> dict[str, Any] | None:
    for task in ehr.search("Task", {"focus": f"ServiceRequest/{order_id}"}):
        if task["businessStatus"]["coding"][0]["code"] == "booked":
            return task
    return None
