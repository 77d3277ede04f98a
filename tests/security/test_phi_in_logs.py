"""No patient data in any log line at any level: a full referral flow carrying distinctive
synthetic names, identifiers, birth dates and notes, plus malformed and invalid bodies, run at
DEBUG in process (every record, its arguments, extras and tracebacks, and stdout/stderr) and
through `referral-service serve` (gunicorn access and error logs, the worker)."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import pytest
import requests

from referral_service.observability.logging_setup import ConsoleFormatter, JsonFormatter
from referral_service.worker import Worker
from tests.security.conftest import both_databases
from tests.security.phi import FAMILY, MRN, REFERRAL_NUMBER, leaks, run_flow
from tests.support.service import serve


class _Reply:
    """The Flask test response with the `requests` names the flow uses."""

    def __init__(self, response: Any) -> None:
        self.status_code = response.status_code
        self.text = response.get_data(as_text=True)

    def json(self) -> Any:
        return json.loads(self.text)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return both_databases(request)


def _record_text(record: logging.LogRecord) -> str:
    """Everything a handler could ever print of a record: message, args, extras, traceback."""
    parts = [str(vars(record)), record.getMessage()]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


@pytest.fixture
def all_log_output(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handlers = [logging.StreamHandler(stream), logging.StreamHandler(stream)]
    handlers[0].setFormatter(JsonFormatter())
    handlers[1].setFormatter(ConsoleFormatter())
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)

    def collected() -> str:
        captured = capsys.readouterr()
        records = "\n".join(_record_text(record) for record in caplog.records)
        return "\n".join([stream.getvalue(), captured.out, captured.err, records])

    yield collected
    for handler in handlers:
        root.removeHandler(handler)


def test_the_capture_would_catch_a_leak(all_log_output: Any) -> None:
    logging.getLogger("referral_service.anything").debug("patient %s", FAMILY)
    try:
        raise ValueError(MRN)
    except ValueError:
        logging.getLogger("x").exception("failed")
    assert leaks(all_log_output()) == [FAMILY, MRN]


def test_no_phi_in_logs_in_process(client: Any, runtime: Any, all_log_output: Any) -> None:
    def send(method: str, path: str, body: Any, headers: dict[str, str]) -> _Reply:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body)
        return _Reply(client.open(path, method=method, data=data, headers=headers))

    run_flow(send, lambda: Worker(runtime).run_until_idle())
    output = all_log_output()
    assert output.strip(), "nothing was logged at DEBUG: the capture is broken"
    assert leaks(output) == []


def test_no_phi_in_served_logs(tmp_path: Any) -> None:
    env = {"REFERRAL_LOG_LEVEL": "DEBUG", "REFERRAL_LOG_FORMAT": "json"}
    with serve(tmp_path, env, "--workers", "1") as service:
        base = service.base_url

        def send(method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body)
            return requests.request(method, base + path, data=data, headers=headers, timeout=10)

        def wait_for_worker() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "job done" not in service.logs():
                time.sleep(0.2)

        run_flow(send, wait_for_worker)
        time.sleep(0.5)  # let the access log lines of the last requests reach the file
    logs = service.logs()
    assert '"http_request"' in logs and "job done" in logs
    assert leaks(logs) == []
    assert "?identifier" not in logs and REFERRAL_NUMBER not in logs
