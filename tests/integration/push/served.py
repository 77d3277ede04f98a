"""The app (SQLite or PostgreSQL, by the `database_url` parameter) served over real HTTP on a
loopback port by werkzeug in a thread, each caller naming its sending system in the test-only
`X-Test-Sender` header (see conftest.senders_app)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from tests.integration.push.placer import Send


@pytest.fixture
def served_url(senders_app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, senders_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


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
