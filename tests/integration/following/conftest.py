"""Fixtures for referrers' Subscriptions: a real rest-hook receiver on loopback (it can be taken
down and brought back on the same port), and an app whose callers name their sending system in
an `X-Test-Sender` header (test-only: production takes the sender from the bearer token)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import g, request

from referral_service.config import Settings
from tests.support.referrals import FHIR_JSON, eligible_referral

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
TOPIC = "https://referral-service.dev/SubscriptionTopic/referral-task-changed"


class Receiver:
    """Records every notification POSTed to it (body and headers), answering `answer`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answer = 200
        self.answers: list[int] = []  # the next requests' answers, before `answer`
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(json.loads(body))
                receiver.headers.append(dict(self.headers))
                answers = receiver.answers
                self.send_response(answers.pop(0) if answers else receiver.answer)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Hook)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def down(self) -> None:
        """Gone: connections are refused until `up()`."""
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [bundle for bundle in self.received if notification_type(bundle) == kind]

    def event_numbers(self) -> list[int]:
        return [n for bundle in self.of_type("event-notification") for n in event_numbers(bundle)]


def status_of(bundle: dict[str, Any]) -> dict[str, Any]:
    parameters = bundle["entry"][0]["resource"]["parameter"]
    return {p["name"]: p for p in parameters if p["name"] != "notification-event"}


def notification_type(bundle: dict[str, Any]) -> str:
    return str(status_of(bundle)["type"]["valueCode"])


def event_numbers(bundle: dict[str, Any]) -> list[int]:
    parameters = bundle["entry"][0]["resource"]["parameter"]
    return [
        int(part["valueString"])
        for p in parameters
        if p["name"] == "notification-event"
        for part in p["part"]
        if part["name"] == "event-number"
    ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    if receiver._server is not None:
        receiver.down()


def subscription(
    endpoint: str,
    *,
    referral_id: str | None = None,
    content: str = "id-only",
    heartbeat: int | None = None,
) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "payload": "application/fhir+json",
        "_payload": {
            "extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": content}]
        },
        "header": ["Authorization: Bearer receiver-secret"],
    }
    if heartbeat is not None:
        channel["extension"] = [
            {"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": heartbeat}
        ]
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Follow my referrals",
        "criteria": TOPIC,
        "channel": channel,
    }
    if referral_id is not None:
        resource["_criteria"] = {
            "extension": [
                {
                    "url": BACKPORT + "backport-filter-criteria",
                    "valueString": f"Task?focus=ServiceRequest/{referral_id}",
                }
            ]
        }
    return resource


Call = Callable[..., Any]


@pytest.fixture
def as_sender(app) -> Callable[[str], Call]:  # type: ignore[no-untyped-def]
    @app.before_request
    def _act_as_sender() -> None:
        sender = request.headers.get("X-Test-Sender")
        if sender:
            g.sender = sender
            g.is_staff = False

    client = app.test_client()

    def make(sender: str) -> Call:
        def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            headers = {"X-Test-Sender": sender, "Content-Type": FHIR_JSON}
            return client.open(path, method=method, json=body, headers=headers)

        return call

    return make


def refer(call: Call, identifier: str) -> str:
    response = call("POST", "/fhir/ServiceRequest", eligible_referral(identifier))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Backoff that only a moved clock brings due, and a small retry budget."""
    return Settings(database_url=database_url, job_backoff_base_seconds=30.0, job_max_attempts=4)


def run_for(runtime: Any, clock: Any, seconds: float, steps: int = 1) -> None:
    """Let the worker run what falls due over `seconds` of the test clock, in `steps`."""
    from referral_service.worker import Worker

    Worker(runtime).run_until_idle()
    for _ in range(steps):
        clock.moment += timedelta(seconds=seconds / steps)
        Worker(runtime).run_until_idle()
