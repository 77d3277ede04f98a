"""The clinic's EHR booking lock: one booking at a time (search, plan, transaction) per clinic,
across the worker's threads and processes, so every plan sees every booking this service made.

The EHR's `ifMatch` guards a Slot, not the day's nurse load: two bookings planned on the same
search can take two different Slots at the same start and together exceed the nurses on duty.

PostgreSQL: a transaction-level advisory lock on a connection of its own, held while the EHR
is asked (a few requests, each bounded by REFERRAL_EHR_TIMEOUT_SECONDS). Transaction-level, not
session-level: ending the transaction (or losing the connection, or the process) releases it,
so a lock can never go back to the pool still held, and it works behind a transaction-pooling
PgBouncer. A waiter gives up after `wait_seconds` (`lock_timeout`): BookingBusy, and the job
retries later. A holder silent for `hold_seconds` (the job's lease: a stalled worker whose job
another has taken over) has its session ended by the server
(`idle_in_transaction_session_timeout`), so the taker is not held up; `still_held()` before
booking on the EHR tells the stalled one it no longer holds the lock (BookingLockLost).

SQLite (one host): an exclusive `flock` on a file beside the database (SQLite's own write lock
would stall every writer, intake included, while the EHR answers); it has no hold limit.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

EHR_BOOKINGS = 17_0018  # first key of pg_advisory_xact_lock(int, int): the EHR booking locks
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires
POLL_SECONDS = 0.005
_in_memory: dict[int, threading.Lock] = {}
_in_memory_guard = threading.Lock()


class BookingBusy(Exception):
    """Another booking held the clinic's lock for longer than this one may wait."""


class BookingLockLost(BookingBusy):
    """This booking held the lock too long without a word and the server took it back."""


_holding = threading.local()  # the lock connection of the booking this thread is making


def still_held() -> None:
    """Before booking on the EHR: raise BookingLockLost when this thread's PostgreSQL booking
    lock was taken back (nothing to check outside a lock, or on SQLite's file lock)."""
    conn: Connection | None = getattr(_holding, "conn", None)
    if conn is None:
        return
    # The server takes the lock back only after the connection was idle for the hold limit;
    # well within it since the lock was taken, it cannot have (no round trip needed).
    if time.monotonic() - _holding.since < _holding.hold_seconds / 2:
        return
    try:
        conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise BookingLockLost("the clinic's booking lock was taken back") from exc


def clinic_key(clinic: str) -> int:
    """The clinic's name (its EHR and Schedules) as the advisory lock's signed 32-bit key."""
    digest = hashlib.blake2b(clinic.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class ClinicBookingLock:
    """`with lock():` holds the clinic's booking lock for the block, or raises BookingBusy."""

    def __init__(
        self, engine: Engine, clinic: str, wait_seconds: float, hold_seconds: float = 120
    ) -> None:
        self.engine, self.key = engine, clinic_key(clinic)
        self.wait_seconds, self.hold_seconds = wait_seconds, hold_seconds

    def __call__(self) -> AbstractContextManager[None]:
        if self.engine.dialect.name == "postgresql":
            return _advisory(self.engine, self.key, self.wait_seconds, self.hold_seconds)
        database = self.engine.url.database
        if not database or database == ":memory:":
            return _in_process(self.key, self.wait_seconds)
        return _file_lock(f"{database}.booking-{self.key & 0xFFFFFFFF:08x}.lock", self.wait_seconds)


# One round trip: the limits first (a MATERIALIZED CTE is evaluated before the query that
# reads it), then the lock, whose wait the new lock_timeout already bounds.
_LOCK = text(
    "WITH limits AS MATERIALIZED (SELECT set_config('lock_timeout', :wait, true),"
    " set_config('idle_in_transaction_session_timeout', :hold, true))"
    " SELECT pg_advisory_xact_lock(:kind, :clinic) FROM limits"
)


@contextmanager
def _advisory(engine: Engine, key: int, wait_seconds: float, hold_seconds: float) -> Iterator[None]:
    try:
        conn = engine.connect()
    except PoolTimeout as exc:  # every pooled connection is waiting for a lock already
        raise BookingBusy("no database connection free to wait for the booking lock") from exc
    try:
        conn.begin()
        wait, hold = _ms(wait_seconds), _ms(hold_seconds)
        try:
            conn.execute(_LOCK, {"wait": wait, "hold": hold, "kind": EHR_BOOKINGS, "clinic": key})
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise BookingBusy(f"the clinic's booking lock was busy for {wait}") from exc
            raise
        _holding.conn, _holding.since, _holding.hold_seconds = conn, time.monotonic(), hold_seconds
        yield
    finally:
        _holding.conn = None
        _let_go(conn)


def _ms(seconds: float) -> str:
    return f"{max(1, int(seconds * 1000))}ms"


def _let_go(conn: Connection) -> None:
    """End the lock's transaction. A connection lost meanwhile took the lock with it: the
    booking it guarded is done either way, so that is logged, not raised."""
    try:
        conn.rollback()
    except DBAPIError as exc:
        log.warning("booking lock connection lost before release: %s", type(exc).__name__)
    finally:
        conn.close()


@contextmanager
def _file_lock(path: str, wait_seconds: float) -> Iterator[None]:
    # Each entry opens the file anew: flock locks belong to the open file, so threads of one
    # process exclude each other as processes do.
    with open(path, "a+b") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    busy = f"the clinic's booking lock was busy for {wait_seconds}s"
                    raise BookingBusy(busy) from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _in_process(key: int, wait_seconds: float) -> Iterator[None]:
    """An in-memory SQLite database lives in one process: a plain lock is enough."""
    with _in_memory_guard:
        lock = _in_memory.setdefault(key, threading.Lock())
    if not lock.acquire(timeout=wait_seconds):
        raise BookingBusy(f"the clinic's booking lock was busy for {wait_seconds}s")
    try:
        yield
    finally:
        lock.release()
