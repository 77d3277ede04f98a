"""Gunicorn settings for the referral API, all from the environment.

Used as `gunicorn -c python:referral_service.gunicorn_conf referral_service.wsgi:app` (the
container's command) and by `referral-service serve`. The access log is one JSON object a line
with the path only: query strings can carry patient identifiers (`?identifier=`, `?patient=`)
and are never logged.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from referral_service.observability import (
    MULTIPROC_ENV,
    PRIVATE_DIR_PREFIX,
    prepare_multiprocess_dir,
)

REQUEST_ID_HEADER = "x-request-id"
# gunicorn's "Error handling request GET /path?query" names the raw URI: drop the query.
_QUERY_STRING = re.compile(r"(/[^\s?]*)\?\S*")


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


class JsonLineFormatter(logging.Formatter):
    """gunicorn's own messages (start, worker boot/exit, errors) as JSON lines too."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "event": _QUERY_STRING.sub(r"\1?[redacted]", record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


class JsonAccessLogger(Logger):
    """Gunicorn logger writing JSON lines; access lines carry no query string."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonLineFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        self.access_log.info(json.dumps(access_record(resp, req, environ, request_time)))


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key.lower() == name:
            return str(value)
    return None


def access_record(resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict:
    """The fields logged for one request: no query string, body, user agent or client address."""
    status = str(resp.status).split(None, 1)[0]
    request_id = _header(getattr(resp, "headers", None), REQUEST_ID_HEADER) or _header(
        getattr(req, "headers", None), REQUEST_ID_HEADER
    )
    return {
        "ts": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
        "level": "INFO",
        "logger": "gunicorn.access",
        "event": "http_request",
        "method": environ.get("REQUEST_METHOD"),
        # environ is bare when the app raised; the parsed request still knows its path
        "path": environ.get("PATH_INFO") or getattr(req, "path", None),
        "status": int(status) if status.isdigit() else status,
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "bytes": getattr(resp, "sent", None),
        "request_id": request_id,
    }


bind = [os.environ.get("REFERRAL_BIND", "127.0.0.1:8080")]
workers = _int_env("REFERRAL_WEB_CONCURRENCY", 2)
# Requests spend most of their time waiting on the database, so each process serves several
# at once on threads (the app is thread-safe: per-request state lives in Flask's context and
# SQLAlchemy's pool). REFERRAL_WEB_THREADS=1 gives plain sync workers.
threads = _int_env("REFERRAL_WEB_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int_env("REFERRAL_WEB_TIMEOUT", 30)
# On SIGTERM (a rolling deployment) in-flight requests get this long to finish.
graceful_timeout = _int_env("REFERRAL_GRACEFUL_TIMEOUT", 25)
keepalive = 5
logger_class = JsonAccessLogger
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("REFERRAL_LOG_LEVEL", "INFO").lower()
# Kept in the documented JSON shape for tools that read the setting; JsonAccessLogger builds
# the real line with proper escaping.
access_log_format = json.dumps(
    {
        "method": "%(m)s",
        "path": "%(U)s",
        "status": "%(s)s",
        "duration_ms": "%(M)s",
        "request_id": "%({x-request-id}i)s",
    }
)
# Heartbeat files in RAM: a container's overlay /tmp can stall workers on fsync.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
# The admin socket would live in $HOME, which the container user does not have.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("REFERRAL_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Set in the master before any worker is forked (and before workers import prometheus_client),
# so every worker writes its metrics to the same directory.
multiproc_dir = str(prepare_multiprocess_dir())
# A private temporary directory (ours or `serve`'s) goes when the server stops; an
# operator-set one stays.
_owns_multiproc_dir = Path(multiproc_dir).name.startswith(PRIVATE_DIR_PREFIX)


def on_exit(server: Any) -> None:
    if _owns_multiproc_dir and os.environ.get(MULTIPROC_ENV) == multiproc_dir:
        shutil.rmtree(multiproc_dir, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges; its counters stay (they are cumulative)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, multiproc_dir)
