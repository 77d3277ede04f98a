"""The REST push pattern against a real `referral-service serve` (gunicorn plus its background
worker) over HTTP: the placer's Task turns accepted and booked, and the logs hold no patient
data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.push.placer import Placer, Send

DEADLINE_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running service on its own SQLite file; yields its base URL and its log file."""
    port = _free_port()
    log = tmp_path / "serve.log"
    env = dict(
        os.environ,
        REFERRAL_DATABASE_URL=f"sqlite:///{tmp_path / 'push.db'}",
        REFERRAL_WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
    )
    executable = Path(sys.executable).with_name("referral-service")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process, log)
        yield base, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still booting
            pass
        time.sleep(0.2)
    pytest.fail(f"the service did not start: {log.read_text()[-2000:]}")


def _http(base: str) -> Send:
    session = requests.Session()

    def send(method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        response = session.request(method, f"{base}{path}", json=body, headers=headers, timeout=10)
        return response.status_code, response.json() if response.content else None

    return send


def test_a_pushed_referral_is_booked_by_the_running_service(served: tuple[str, Path]) -> None:
    base, log = served
    placer = Placer(_http(base), case="http")
    task_id = placer.refer()
    assert Placer(_http(base), case="http").refer() == task_id  # a retrying placer: no twin

    deadline = time.monotonic() + DEADLINE_SECONDS
    found: dict[str, Any] = {"total": 0}
    while time.monotonic() < deadline and not found["total"]:
        found = placer.ask("GET", f"/fhir/Task?_id={task_id}&status=accepted")
        booked = found["total"] and found["entry"][0]["resource"]["businessStatus"]["text"]
        if booked != "booked":
            found = {"total": 0}
            time.sleep(0.3)
    assert found["total"] == 1, placer.ask("GET", f"/fhir/Task/{task_id}")
    appointment = found["entry"][0]["resource"]["output"][0]["valueReference"]["reference"]
    assert placer.ask("GET", f"/fhir/{appointment}")["status"] == "booked"

    logged = log.read_text()
    assert "POST" in logged and "/fhir/Patient" in logged  # the access log is there...
    for patient_data in ("Testperson", "1980-04-02", "patient-http", "sr-http"):
        assert patient_data not in logged  # ...without a name, birth date or identifier
