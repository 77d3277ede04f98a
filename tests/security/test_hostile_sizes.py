"""The hostile-size suite: deep nesting, huge strings and arrays, many entries and values, bodies
over the limit, sent to every endpoint that reads a body, each refused with 413 `too-costly`
and nothing stored; a client trickling its body is cut off by gunicorn's timeout. Time bounds
are measured in bench/hostile_input.py, not asserted here."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import requests

from tests.security.conftest import stored_rows
from tests.security.hostile import hostile_bodies
from tests.support.service import serve

FHIR_ENDPOINTS = [
    ("POST", "/fhir/ServiceRequest"),
    ("PUT", "/fhir/ServiceRequest/some-id"),
    ("POST", "/fhir"),
    ("POST", "/fhir/ServiceRequest/$evaluate"),
    ("POST", "/fhir/Patient"),
]


@pytest.mark.parametrize("method,path", FHIR_ENDPOINTS)
def test_hostile_bodies_are_refused_with_413(
    client: Any, runtime: Any, method: str, path: str
) -> None:
    before = stored_rows(runtime.engine)
    for name, body in hostile_bodies().items():
        response = client.open(
            path, method=method, data=body, headers={"Content-Type": "application/fhir+json"}
        )
        assert response.status_code == 413, (name, response.status_code)
        outcome = response.get_json()
        assert outcome["resourceType"] == "OperationOutcome", name
        assert outcome["issue"][0]["code"] == "too-costly", name
    assert stored_rows(runtime.engine) == before


def test_hostile_json_to_the_staff_api_is_refused_with_413(client: Any) -> None:
    for name, body in hostile_bodies().items():
        response = client.post(
            "/api/referrals/some-id/review", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, (name, response.status_code)
        assert response.get_json()["issues"][0]["code"] == "too-costly", name


def test_a_referral_at_the_edge_of_the_limits_is_still_accepted(client: Any) -> None:
    from tests.support.referrals import eligible_referral

    referral = eligible_referral("edge-1")
    referral["note"] = [{"text": "n" * 60_000}]
    referral["extension"] = [
        {"url": f"https://x.example.org/{i}", "valueString": "x"} for i in range(900)
    ]
    response = client.post(
        "/fhir/ServiceRequest", json=referral, headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 201, response.get_json()


def _trickle(base_url: str, seconds: float, every: float) -> tuple[float, bytes]:
    """Send headers promising 1,000 bytes, then a byte `every` seconds: when is it cut off?"""
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=seconds + 10) as sock:
        sock.sendall(
            b"POST /fhir/ServiceRequest HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{"
        )
        answer = b""
        try:
            while time.monotonic() - started < seconds + 10:
                sock.sendall(b" ")
                sock.settimeout(every)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                answer += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
    return time.monotonic() - started, answer


@pytest.mark.parametrize(
    "env,every",
    [
        # threaded workers (the default): a body silent for the read deadline gets 408 + close
        ({"REFERRAL_BODY_READ_TIMEOUT": "2", "REFERRAL_WEB_THREADS": "4"}, 3.0),
        # sync workers: gunicorn's worker timeout kills the stuck worker, however it trickles
        ({"REFERRAL_WEB_TIMEOUT": "2", "REFERRAL_WEB_THREADS": "1"}, 0.5),
    ],
    ids=["gthread", "sync"],
)
def test_a_slow_body_is_cut_off(tmp_path: Any, env: dict[str, str], every: float) -> None:
    with serve(tmp_path, env, "--workers", "2", "--no-worker") as service:
        elapsed, answer = _trickle(service.base_url, seconds=2, every=every)
        assert elapsed < 2 + 6, elapsed  # cut off near the deadline, not after 1,000 seconds
        assert not answer.startswith(b"HTTP/1.1 2")
        if env["REFERRAL_WEB_THREADS"] != "1":
            assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        health = requests.get(f"{service.base_url}/healthz", timeout=5)
        assert health.status_code == 200  # the server itself carries on
        search = requests.get(f"{service.base_url}/fhir/ServiceRequest", timeout=5).json()
        assert search["total"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/ServiceRequest?_offset=99999999999999999999999",
        "/fhir/Task?_offset=1000001",
        "/fhir/Appointment?_count=" + "9" * 5000,
        "/fhir/AuditEvent?_offset=99999999999999999999999",
        "/api/referrals?offset=99999999999999999999999",
    ],
)
def test_absurd_paging_is_400_not_an_integer_overflow(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    body = response.get_json()
    issues = body["issues"] if path.startswith("/api/") else body["issue"]
    assert issues[0]["code"] == "value"
