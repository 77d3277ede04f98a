"""Structured logs: one JSON object a line (or readable console lines), with the request id.

Only fields we put there by name reach a line: ids, codes, durations. Patient data never does;
the PHI-in-logs tests hold us to that.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


def _request_id() -> str | None:
    try:
        from flask import g, has_request_context

        return g.get("request_id") if has_request_context() else None
    except ImportError:  # pragma: no cover
        return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        request_id = _request_id()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where it came from, not its message or locals.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


class ConsoleFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = json.loads(super().format(record))
        head = f"{entry.pop('ts')} {entry.pop('level'):7} {entry.pop('event')}"
        entry.pop("logger", None)
        return head + "".join(f" {k}={v}" for k, v in entry.items())


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "werkzeug", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
