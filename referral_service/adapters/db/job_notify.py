"""Worker wake-up across hosts on PostgreSQL: LISTEN on the channel that the `jobs` table's
trigger (migration 0003) notifies when a transaction that made a job pending commits.

Only a hint, like the UDP wake-up: the job is in the table, and a missed notification costs
at most one poll. The listening connection is the worker's own (LISTEN needs a session, so not
one from the pool, and not through a transaction-pooling PgBouncer: set
REFERRAL_WORKER_LISTEN=0 there). When it breaks, the worker polls until it reconnects.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from typing import Any

import psycopg
from sqlalchemy import Engine

from referral_service.adapters.wakeup import Interrupt

log = logging.getLogger(__name__)
CHANNEL = "referral_jobs"
_HAS_TRIGGER = (
    "SELECT 1 FROM pg_trigger WHERE tgname = 'jobs_notify' AND tgrelid = to_regclass('jobs')"
)
RECONNECT_EVERY_SECONDS = 5.0


class JobNotifyListener:
    """wait() returns when a job was queued anywhere, on interrupt(), or after the timeout."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._next_connect = 0.0
        self._warned: str | None = None
        self._interrupt = Interrupt()
        self._connect()

    @property
    def listening(self) -> bool:
        return self._conn is not None

    def _connect(self) -> None:
        """Connect and LISTEN, but only where the jobs table notifies (migration 0003): before
        that, listening would only slow the idle poll down. Tried again every few seconds."""
        self._next_connect = time.monotonic() + RECONNECT_EVERY_SECONDS
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            self._warn_once(f"job notifications unavailable ({type(exc).__name__}); polling")
            return
        try:
            if conn.execute(_HAS_TRIGGER).fetchone() is None:
                self._warn_once("the jobs table does not notify (migration 0003?); polling")
                conn.close()
                return
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self._warn_once(f"job notifications unavailable ({type(exc).__name__}); polling")
            conn.close()
            return
        self._warned = None
        self._conn = conn

    def _warn_once(self, message: str) -> None:
        if self._warned != message:
            log.warning(message)
        self._warned = message

    def wait(self, timeout: float) -> bool:
        if self._conn is None and time.monotonic() >= self._next_connect:
            self._connect()
        sources: list[Any] = [self._interrupt.reader]
        if self._conn is not None:
            sources.append(self._conn.fileno())
        ready, _, _ = select.select(sources, [], [], timeout)
        if self._interrupt.reader in ready:
            self._interrupt.drain()
        if self._conn is not None and self._conn.fileno() in ready:
            self._consume()
        return bool(ready)

    def _consume(self) -> None:
        assert self._conn is not None
        try:
            for _ in self._conn.notifies(timeout=0):
                pass
        except psycopg.Error as exc:  # the server went away: poll, reconnect later
            log.warning("job notification connection lost (%s)", type(exc).__name__)
            self._drop()
            return
        if self._conn.closed or self._conn.broken:  # readable for good: never spin on it
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._next_connect = time.monotonic() + RECONNECT_EVERY_SECONDS

    def interrupt(self) -> None:
        self._interrupt.ring()

    def close(self) -> None:
        self._drop()
        self._interrupt.close()


def open_job_listener(engine: Engine) -> JobNotifyListener | None:
    """A listener for a PostgreSQL engine; None elsewhere."""
    if engine.dialect.name != "postgresql":
        return None
    url = engine.url.set(drivername="postgresql")
    return JobNotifyListener(url.render_as_string(hide_password=False))
