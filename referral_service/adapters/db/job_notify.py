"""Worker wake-up across hosts on PostgreSQL: LISTEN on the channel that the `jobs` table's
trigger (migrations 0003, 0008) notifies when a transaction that made a job pending commits.
The channel is the jobs table's schema's own (`referral_jobs:<schema>`): channels span the
whole database, and deployments or test runs sharing one must not wake each other.

The payload is the job's kind (migration 0010): a listener given its lane's kinds wakes only
for those, so one queued decision does not send every lane of the worker to claim nothing.

Only a hint, like the UDP wake-up: the job is in the table, and a missed notification costs
at most one poll. The listening connection is the worker's own (LISTEN needs a session, so not
one from the pool, and not through a transaction-pooling PgBouncer: set
REFERRAL_WORKER_LISTEN=0 there). When it breaks, the worker polls until it reconnects.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import select
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from referral_service.adapters.wakeup import Interrupt

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "referral_jobs:"
# The schema of the `jobs` table on the search path, if its notifying trigger is there.
_NOTIFYING_SCHEMA = (
    "SELECT n.nspname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE t.tgname = 'jobs_notify' AND t.tgrelid = to_regclass('jobs')"
)
RECONNECT_EVERY_SECONDS = 5.0


def channel_for(schema: str) -> str:
    """The channel the jobs trigger of `schema` notifies (migration 0008 computes the same):
    channel names stop at 63 bytes, so a longer schema name is replaced by its md5."""
    if len(schema.encode()) > 63 - len(CHANNEL_PREFIX):
        schema = hashlib.md5(schema.encode()).hexdigest()  # a name, not a secret
    return CHANNEL_PREFIX + schema


class JobNotifyListener:
    """wait() returns when a job of a kind it `takes` was queued anywhere (an empty payload,
    from a trigger before migration 0010, counts as any kind), on interrupt(), or after the
    timeout."""

    def __init__(self, conninfo: str, takes: Callable[[str], bool] = lambda _kind: True) -> None:
        self._conninfo = conninfo
        self._takes = takes
        self._conn: psycopg.Connection[Any] | None = None
        self._next_connect = 0.0
        self._warned: str | None = None
        self._interrupt = Interrupt()
        self.channel: str | None = None
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
            found = conn.execute(_NOTIFYING_SCHEMA).fetchone()
            if found is None:
                self._warn_once("the jobs table does not notify (migration 0003?); polling")
                conn.close()
                return
            self.channel = channel_for(str(found[0]))
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
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
        deadline = time.monotonic() + timeout
        while True:
            sources: list[Any] = [self._interrupt.reader]
            if self._conn is not None:
                sources.append(self._conn.fileno())
            remaining = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(sources, [], [], remaining)
            if not ready:
                return False
            if self._interrupt.reader in ready:
                self._interrupt.drain()
                return True
            if self._consume() or self._conn is None:
                return True  # a job for this lane, or the connection is gone: go and look
            if time.monotonic() >= deadline:
                return False

    def _consume(self) -> bool:
        """Read the pending notifications: did any name a kind this listener takes?"""
        assert self._conn is not None
        wanted = False
        try:
            for notification in self._conn.notifies(timeout=0):
                kind = notification.payload
                wanted = wanted or not kind or self._takes(kind)
        except psycopg.Error as exc:  # the server went away: poll, reconnect later
            log.warning("job notification connection lost (%s)", type(exc).__name__)
            self._drop()
            return True
        if self._conn.closed or self._conn.broken:  # readable for good: never spin on it
            self._drop()
        return wanted

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._next_connect = time.monotonic() + RECONNECT_EVERY_SECONDS

    def interrupt(self) -> None:
        self._interrupt.ring()

    def drain(self) -> None:
        """Forget the wake-ups already here (notifications, interrupts): the caller is about to
        claim, and the jobs they announced were committed before that claim looks."""
        self._interrupt.drain()
        if self._conn is not None:
            self._consume()

    def close(self) -> None:
        self._drop()
        self._interrupt.close()


def open_job_listener(
    engine: Engine, takes: Callable[[str], bool] = lambda _kind: True
) -> JobNotifyListener | None:
    """A listener for a PostgreSQL engine (woken for the job kinds it `takes`); None elsewhere."""
    if engine.dialect.name != "postgresql":
        return None
    url = engine.url.set(drivername="postgresql")
    return JobNotifyListener(url.render_as_string(hide_password=False), takes)
