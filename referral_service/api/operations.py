"""Operations endpoints: liveness, readiness and Prometheus metrics.

The runtime comes from `current_app.extensions["referral_service"]`: `.engine` (SQLAlchemy),
`.alembic_config()`, `.ehr_client` (None when scheduling locally) and `.settings`. Readiness
details name the failing check and the error's type only: exception messages can contain
connection strings or EHR response text, which are for the log, not for an unauthenticated probe.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from referral_service.observability.metrics import render_latest

log = logging.getLogger(__name__)

operations_bp = Blueprint("operations", __name__)

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


def _runtime() -> Any:
    return current_app.extensions["referral_service"]


def _failure(check: str, exc: Exception) -> dict[str, Any]:
    log.warning("readiness check %s failed: %s", check, type(exc).__name__, exc_info=exc)
    return {"status": FAILED, "error": type(exc).__name__}


def check_database(engine: Any) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except Exception as exc:  # any driver error means "not ready", never a 500
        return _failure("database", exc)
    return {"status": OK}


def check_migrations(engine: Any, alembic_config: Any) -> dict[str, Any]:
    try:
        script = ScriptDirectory.from_config(alembic_config)
        heads = set(script.get_heads())
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        ahead = bool(current) and not any(_known(script, rev) for rev in current)
    except Exception as exc:
        return _failure("migrations", exc)
    result: dict[str, Any] = {"current": sorted(current), "head": sorted(heads)}
    if current == heads:
        return {"status": OK, **result}
    if ahead:
        # A newer release migrated the schema while this one still runs (a rolling deployment):
        # migrations are written expand-then-contract, so the old code keeps serving.
        return {"status": OK, "note": "database-ahead-of-release", **result}
    # Pending migrations: this release is newer than the schema (run `db upgrade`).
    return {"status": FAILED, "error": "migrations-pending", **result}


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises ResolutionError/CommandError for unknown ids
        return False


def check_ehr(ehr_client: Any) -> dict[str, Any]:
    if ehr_client is None:
        return {"status": SKIPPED, "reason": "no EHR configured (local scheduling)"}
    now = time.monotonic()
    with _ehr_lock:
        cached = _cached_ehr_result(ehr_client, now)
    if cached is not None:
        return cached
    result = _probe_ehr(ehr_client)
    with _ehr_lock, contextlib.suppress(TypeError):  # a client without weakref support
        _ehr_results[ehr_client] = (now, result)
    return result


# The EHR client retries with backoff and can take far longer than a probe's timeout. A probe
# must answer in time and must not hold a sync worker, so the call runs on one background thread
# with a deadline (a hung call makes later ones wait behind it and fail fast, rather than piling
# up threads), and a result is reused for a few seconds across probes.
EHR_CHECK_DEADLINE_SECONDS = 3.0
EHR_CHECK_CACHE_SECONDS = 10.0
_ehr_lock = threading.Lock()
_ehr_results: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)
_ehr_executor: ThreadPoolExecutor | None = None


def _cached_ehr_result(ehr_client: Any, now: float) -> dict[str, Any] | None:
    try:
        checked_at, result = _ehr_results[ehr_client]
    except (KeyError, TypeError):
        return None
    return result if now - checked_at < EHR_CHECK_CACHE_SECONDS else None


def _probe_ehr(ehr_client: Any) -> dict[str, Any]:
    global _ehr_executor
    with _ehr_lock:
        if _ehr_executor is None:  # created lazily: after gunicorn has forked this worker
            _ehr_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-ehr")
        future = _ehr_executor.submit(ehr_client.capabilities)
    try:
        statement = future.result(timeout=EHR_CHECK_DEADLINE_SECONDS)
    except Exception as exc:
        if not future.done():
            log.warning("readiness check ehr: no answer in %.1f s", EHR_CHECK_DEADLINE_SECONDS)
            return {"status": FAILED, "error": "deadline-exceeded"}
        return _failure("ehr", exc)
    if not isinstance(statement, dict) or statement.get("resourceType") != "CapabilityStatement":
        return {"status": FAILED, "error": "not-a-capability-statement"}
    return {"status": OK, "fhirVersion": statement.get("fhirVersion")}


@operations_bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@operations_bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    runtime = _runtime()
    checks = {"database": check_database(runtime.engine)}
    if checks["database"]["status"] == OK:
        checks["migrations"] = check_migrations(runtime.engine, runtime.alembic_config())
    else:
        checks["migrations"] = {"status": SKIPPED, "reason": "database unreachable"}
    checks["ehr"] = check_ehr(runtime.ehr_client)
    ready = all(check["status"] != FAILED for check in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return jsonify(body), 200 if ready else 503


@operations_bp.get("/metrics")
def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, status=200, headers={"Content-Type": content_type})
