"""Fixtures for the REST push tests: an app whose callers name their sending system in an
`X-Test-Sender` header (test-only: production takes the sender from the bearer token)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import g, request

from tests.integration.push.placer import Placer, Send
from tests.support.service import serve_in_thread


@pytest.fixture
def senders_app(app):  # type: ignore[no-untyped-def]
    @app.before_request
    def _act_as_sender() -> None:
        # Registered after the app's own hooks, so it has the last word, like auth would.
        sender = request.headers.get("X-Test-Sender")
        if sender:
            g.sender = sender
            g.is_staff = False

    return app


@pytest.fixture
def as_sender(senders_app):  # type: ignore[no-untyped-def]
    """as_sender("er-a") -> a Send function that calls the app as that referring system."""
    client = senders_app.test_client()

    def make(sender: str) -> Send:
        def send(
            method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
        ) -> tuple[int, Any]:
            response = client.open(
                path, method=method, json=body, headers={**headers, "X-Test-Sender": sender}
            )
            return response.status_code, response.get_json(silent=True)

        return send

    return make


@pytest.fixture
def placer(as_sender) -> Placer:  # type: ignore[no-untyped-def]
    return Placer(as_sender("er-a"), case="c1")


# The app (SQLite or PostgreSQL, by `database_url`) served over real HTTP on a loopback port by
# werkzeug in a thread, callers naming their sender in the test-only X-Test-Sender header.


@pytest.fixture
def served_url(senders_app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with serve_in_thread(senders_app) as url:
        yield url


@pytest.fixture
def over_http(served_url: str) -> Callable[[str], Send]:
    """over_http("er-a") -> a Send function that calls the served app as that sender."""
    session = requests.Session()

    def make(sender: str) -> Send:
        def send(method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
            data = None if body is None else json.dumps(body).encode()
            response = session.request(
                method,
                served_url + path,
                data=data,
                headers={**headers, "X-Test-Sender": sender},
                timeout=30,
            )
            try:
                return response.status_code, response.json()
            except ValueError:
                return response.status_code, None

        return send

    return make
