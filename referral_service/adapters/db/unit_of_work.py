"""The unit of work (cosmicpython's pattern on SQLAlchemy 2 Core): one transaction per use case,
with the repositories that work in it.

    with runtime.unit_of_work() as uow:
        task = uow.tasks.for_referral(referral_id)
        uow.events.add(referral_id, "booked", now)

The block commits once when it ends normally and rolls back when it raises. Before committing,
the events the use case collected (`uow.collect`) are handed to the handlers the composition root
gave it, in the same transaction: a Task's EHR write-back job is queued with the Task it copies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError, IntegrityError

from referral_service.adapters import lease as leases
from referral_service.adapters.db.job_lease import check_fence
from referral_service.adapters.db.messages import ReceivedMessages
from referral_service.adapters.db.repositories import (
    Appointments,
    AuditTrail,
    CdsCards,
    Events,
    Identifiers,
    Jobs,
    Referrals,
    ServiceState,
    StoredResources,
    Tasks,
    WebhookEvents,
)
from referral_service.adapters.db.subscriptions import Subscriptions
from referral_service.adapters.db.views import StaffViews

# A unique key another transaction (or this one) already holds: an identifier, a chair cell, a
# job's dedupe key. Use cases catch it under this name instead of importing SQLAlchemy.
KeyTaken = IntegrityError

EventHandler = Callable[["SqlUnitOfWork", Any], None]
T = TypeVar("T")


class SqlUnitOfWork:
    def __init__(
        self,
        engine: Engine,
        *,
        job_attempts: int,
        handlers: dict[type, EventHandler] | None = None,
        read_only: bool = False,
        form: Any = None,
        form_links: Any = None,
    ) -> None:
        # The clinic's referral form and its web links: what a needs-information Task asks with
        self.form, self.form_links = form, form_links
        self._engine = engine
        self._job_attempts = job_attempts
        self._handlers = handlers or {}
        self._read_only = read_only
        self._collected: list[Any] = []

    def __enter__(self) -> SqlUnitOfWork:
        conn = self._engine.connect()
        if self._read_only:
            conn = conn.execution_options(read_only=True, **_enforced_read_only(conn))
        self._conn: Connection = conn
        self._transaction: RootTransaction = conn.begin()
        self.referrals = Referrals(conn)
        self.tasks = Tasks(conn)
        self.jobs = Jobs(conn, self._job_attempts)
        self.appointments = Appointments(conn)
        self.events = Events(conn)
        self.identifiers = Identifiers(conn)
        self.resources = StoredResources(conn)
        self.state = ServiceState(conn)
        self.notifications = WebhookEvents(conn)
        self.views = StaffViews(conn)
        self.audit = AuditTrail(conn)
        self.cds_cards = CdsCards(conn)
        self.messages = ReceivedMessages(conn)
        self.subscriptions = Subscriptions(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._publish()
                check_fence(self._conn)  # a job that lost its lease commits nothing
                try:
                    self._transaction.commit()
                except DBAPIError as exc:
                    exc.at_commit = True  # type: ignore[attr-defined]
                    raise
            else:
                self._transaction.rollback()
        finally:
            self._conn.close()

    @property
    def connection(self) -> Connection:
        """For adapters that query in this transaction (audit, read models); not for use cases."""
        return self._conn

    def collect(self, event: Any) -> None:
        """An event for the handlers to act on before this transaction commits."""
        self._collected.append(event)

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Writes sent without waiting for each answer (PostgreSQL's pipeline mode): the lot
        costs one round trip. Nothing inside may read a result; a failure (a taken key, a lost
        connection) surfaces when the block ends, as KeyTaken or a DBAPIError. Plain on SQLite."""
        if self._conn.dialect.name != "postgresql":
            yield
            return
        driver = self._conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        try:
            with driver.pipeline():
                yield
        except psycopg.Error as exc:
            raise self._translated(exc) from exc

    def _translated(self, exc: Any) -> BaseException:
        """A driver error from the pipeline as SQLAlchemy would have raised it statement by
        statement (IntegrityError for a taken key), the connection invalidated if it is lost."""
        lost = self._conn.dialect.is_disconnect(exc, self._conn.connection, None)
        if lost:
            self._conn.invalidate(exc)
        return DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=self._conn.dialect
        )

    def savepoint(self) -> Any:
        """A nested transaction: a KeyTaken inside it rolls back only its own work."""
        return self._conn.begin_nested()

    def _publish(self) -> None:
        while self._collected:
            event = self._collected.pop(0)
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(self, event)


UnitOfWorkFactory = Callable[..., SqlUnitOfWork]


def _enforced_read_only(conn: Connection) -> dict[str, Any]:
    """A running job's read-only unit on PostgreSQL is made truly read-only (BEGIN READ ONLY,
    no extra round trip), which lets it skip the lease fence's round trip: it cannot have
    written anything the fence would refuse. (On SQLite the fence is a local read: kept.)"""
    if conn.dialect.name == "postgresql" and leases.current() is not None:
        return {"postgresql_readonly": True}
    return {}


def lost_connection(exc: BaseException) -> bool:
    """The server dropped the connection (a restart, a terminated backend) before the commit
    was sent: nothing of the transaction was kept, so running it again is safe."""
    return (
        isinstance(exc, DBAPIError)
        and exc.connection_invalidated
        and not getattr(exc, "at_commit", False)
    )


def retry_on_disconnect(work: Callable[[], T]) -> T:
    """Run `work` (one or more units of work); once more if the connection was lost under it.
    The pool is invalidated by then, so the second run gets a fresh connection."""
    try:
        return work()
    except DBAPIError as exc:
        if not lost_connection(exc):
            raise
    return work()
