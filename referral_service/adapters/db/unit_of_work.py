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

from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import IntegrityError

from referral_service.adapters.db.job_lease import check_fence
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
from referral_service.adapters.db.views import StaffViews

# A unique key another transaction (or this one) already holds: an identifier, a chair cell, a
# job's dedupe key. Use cases catch it under this name instead of importing SQLAlchemy.
KeyTaken = IntegrityError

EventHandler = Callable[["SqlUnitOfWork", Any], None]


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
            conn = conn.execution_options(read_only=True)
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
                self._transaction.commit()
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
