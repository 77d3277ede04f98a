"""`referral-service serve` against a real FHIR EHR (SEKMET) over HTTP: a referral POSTed to us
is booked on the EHR, and an EHR outage delays bookings without losing any."""

from __future__ import annotations

import os
import subprocess
import time

import requests

from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.sekmet import start_sekmet
from tests.support.service import EXECUTABLE, serve

HEADERS = {"Content-Type": FHIR_JSON}
APPOINTMENT_SYSTEM = "https://referral-service.dev/appointment"


def _seed(env: dict[str, str], cwd) -> None:
    subprocess.run(
        [EXECUTABLE, "ehr", "seed-demo", "--days", "4", "--chairs", "2"],
        env={**os.environ, **env},
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _task_code(base_url: str, referral_id: str) -> tuple[str, dict]:
    bundle = requests.get(
        f"{base_url}/fhir/Task", params={"focus": f"ServiceRequest/{referral_id}"}, timeout=5
    ).json()
    task = bundle["entry"][0]["resource"]
    return task["businessStatus"]["coding"][0]["code"], task


def _wait_for(base_url: str, referral_id: str, codes: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, task = _task_code(base_url, referral_id)
        if code in codes:
            return task
        time.sleep(0.3)
    raise AssertionError(f"{referral_id} stayed {code}")


def _ehr_appointments(ehr, referral_id: str) -> list[dict]:
    bundle = requests.get(
        f"{ehr.base_url}/Appointment",
        params={"identifier": f"{APPOINTMENT_SYSTEM}|{referral_id}"},
        timeout=10,
    ).json()
    return [entry["resource"] for entry in bundle.get("entry", [])]


def test_a_referral_is_booked_on_the_ehr(tmp_path, sekmet_server) -> None:
    env = {**sekmet_server.env(), "REFERRAL_JOB_BACKOFF_SECONDS": "1"}
    _seed(env, tmp_path)
    with serve(tmp_path, env) as service:
        created = requests.post(
            f"{service.base_url}/fhir/ServiceRequest",
            json=eligible_referral("ehr-e2e-1"),
            headers=HEADERS,
            timeout=10,
        )
        assert created.status_code == 201
        referral_id = created.json()["id"]
        task = _wait_for(service.base_url, referral_id, {"booked", "ehr-failed", "no-slot"})
        assert task["businessStatus"]["coding"][0]["code"] == "booked", task.get("note")
        mirror = requests.get(
            f"{service.base_url}/fhir/{task['output'][0]['valueReference']['reference']}", timeout=5
        ).json()
        assert mirror["status"] == "booked"


def test_an_ehr_outage_delays_bookings_but_loses_none(tmp_path) -> None:
    ehr = start_sekmet(tmp_path / "ehr", smart=False)
    env = {**ehr.env(), "REFERRAL_JOB_BACKOFF_SECONDS": "1", "REFERRAL_EHR_TIMEOUT_SECONDS": "2"}
    try:
        _seed(env, tmp_path)
        with serve(tmp_path, env) as service:
            ehr.stop()
            ids = []
            for n in range(3):
                response = requests.post(
                    f"{service.base_url}/fhir/ServiceRequest",
                    json=eligible_referral(f"outage-{n}"),
                    headers=HEADERS,
                    timeout=10,
                )
                assert response.status_code == 201  # intake never waits for the EHR
                ids.append(response.json()["id"])
            _wait_for(service.base_url, ids[0], {"ehr-retrying"})
            ehr.start()
            for referral_id in ids:
                task = _wait_for(service.base_url, referral_id, {"booked"}, timeout=90)
                assert task["status"] == "accepted"
                (booked,) = _ehr_appointments(ehr, referral_id)
                actors = [p["actor"]["reference"] for p in booked["participant"]]
                assert actors[0] == "#patient" and booked["contained"][0]["id"] == "patient"
                assert actors[1].startswith("Location/")
    finally:
        ehr.stop()
