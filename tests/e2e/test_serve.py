"""`referral-service serve` as a real process over real HTTP: the two-command promise."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.service import serve, stop

HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


def _wait_for_task(base_url: str, referral_id: str, code: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    task: dict = {}
    while time.monotonic() < deadline:
        bundle = requests.get(
            f"{base_url}/fhir/Task", params={"focus": f"ServiceRequest/{referral_id}"}, timeout=5
        ).json()
        task = bundle["entry"][0]["resource"]
        if task["businessStatus"]["coding"][0]["code"] == code:
            return task
        time.sleep(0.3)
    raise AssertionError(f"task never reached {code}: {task.get('businessStatus')}")


def test_serve_books_a_referral_end_to_end(tmp_path) -> None:
    with serve(tmp_path) as service:
        metadata = requests.get(f"{service.base_url}/fhir/metadata", timeout=5)
        assert metadata.json()["resourceType"] == "CapabilityStatement"
        created = requests.post(
            f"{service.base_url}/fhir/ServiceRequest",
            json=eligible_referral("e2e-1"),
            headers=HEADERS,
            timeout=10,
        )
        assert created.status_code == 201
        assert created.headers["Content-Type"].startswith(FHIR_JSON)
        referral_id = created.json()["id"]
        task = _wait_for_task(service.base_url, referral_id, "booked")
        appointment = requests.get(
            f"{service.base_url}/fhir/{task['output'][0]['valueReference']['reference']}", timeout=5
        ).json()
        assert appointment["status"] == "booked"
        assert requests.get(f"{service.base_url}/readyz", timeout=5).status_code == 200


def test_concurrent_http_posts_make_one_referral(tmp_path) -> None:
    with serve(tmp_path, None, "--no-worker") as service:
        document = eligible_referral("e2e-concurrent")

        def post(_: int) -> int:
            return requests.post(
                f"{service.base_url}/fhir/ServiceRequest",
                json=document,
                headers=HEADERS,
                timeout=30,
            ).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(post, range(20)))
        assert statuses.count(201) == 1 and statuses.count(200) == 19
        found = requests.get(
            f"{service.base_url}/fhir/ServiceRequest",
            params={"identifier": "https://er.example.org/referrals|e2e-concurrent"},
            timeout=5,
        ).json()
        assert found["total"] == 1


def test_accepted_referral_survives_a_restart(tmp_path) -> None:
    with serve(tmp_path, None, "--no-worker") as service:
        created = requests.post(
            f"{service.base_url}/fhir/ServiceRequest",
            json=eligible_referral("e2e-restart"),
            headers=HEADERS,
            timeout=10,
        )
        assert created.status_code == 201
        referral_id = created.json()["id"]
    with serve(tmp_path) as service:
        task = _wait_for_task(service.base_url, referral_id, "booked")
        assert task["status"] == "accepted"


def test_serve_refuses_a_public_host_with_auth_off(tmp_path) -> None:
    import subprocess

    from tests.support.service import EXECUTABLE

    result = subprocess.run(
        [EXECUTABLE, "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert result.returncode != 0
    assert "REFERRAL_AUTH=none" in result.stderr
    _ = stop


def test_the_wsgi_entry_point_refuses_a_public_bind_with_auth_off(tmp_path) -> None:
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "REFERRAL_BIND": "0.0.0.0:8080",
        "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
    }
    refused = subprocess.run(
        [sys.executable, "-c", "import referral_service.wsgi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert refused.returncode != 0 and "REFERRAL_AUTH=none" in refused.stderr
    allowed = subprocess.run(
        [sys.executable, "-c", "import referral_service.wsgi"],
        env={**env, "REFERRAL_ALLOW_INSECURE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert allowed.returncode == 0, allowed.stderr
