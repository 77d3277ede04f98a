"""EHRs that misbehave, on loopback, for the CDS time budget tests: one that accepts connections
and never answers, a closed port, and a small HTTP server that answers every request with a
fixed status (recording what it was asked and with which Authorization header)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def hanging_ehr() -> Iterator[str]:
    """Accepts every connection, reads nothing, answers nothing; base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/fhir"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def refusing_ehr() -> str:
    """A base URL on a loopback port nobody listens on: connections are refused."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/fhir"


@dataclass
class AnsweringEhr:
    """Answers every GET with `status` and `body`; records each request's path and token."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    base_url: str = ""


@contextmanager
def answering_ehr(
    status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Iterator[AnsweringEhr]:
    ehr = AnsweringEhr(status, body or _server_error(), headers or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            ehr.requests.append((self.path, self.headers.get("Authorization")))
            payload = json.dumps(ehr.body).encode()
            self.send_response(ehr.status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in ehr.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ehr.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield ehr
    finally:
        httpd.shutdown()
        httpd.server_close()


def _server_error() -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": "database down"}],
    }
