"""The composition root: the running service's shared parts (settings, database engine, policy,
clinic, EHR client), the schedule booking talks to, the units of work use cases get, and the
table of what the worker runs for each job kind.

Built once per process (API or worker); the API keeps it in `app.extensions["referral_service"]`.
Use cases receive this object (as `services.dependencies.Dependencies`); nothing registers itself
by being imported.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from alembic.config import Config
from sqlalchemy import Engine

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.config import Settings
from referral_service.domain.scheduling.booking import BookingOutcome, BookingRequest
from referral_service.services.assessment import evaluate as assessment
from referral_service.services.booking import book as booking_job
from referral_service.services.booking import schedule as booking
from referral_service.services.ehr import hold_sweep, reconciliation
from referral_service.services.ehr import webhooks as ehr_webhooks
from referral_service.services.ehr import writeback as ehr_writeback
from referral_service.services.following import delivery as following
from referral_service.services.form_links import FormLinks
from referral_service.services.jobs import Finish, Handler, Job, JobKind
from referral_service.services.tasks import TaskChanged


def utc_now() -> datetime:
    return datetime.now(UTC)


def _task_changed(uow: SqlUnitOfWork, event: TaskChanged) -> None:
    """A Task changed: its EHR write-back and its referrer's Subscriptions, in its transaction."""
    ehr_writeback.task_changed(uow, event)
    following.task_changed(uow, event)


class Runtime:
    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.now = utc_now

    @cached_property
    def policy(self) -> Any:
        from referral_service.domain.policy import load_policy

        return load_policy(self.settings.policy_file)

    @cached_property
    def clinic(self) -> Any:
        from referral_service.domain.scheduling.clinic import load_clinic

        return load_clinic(self.settings.clinic_file)

    @cached_property
    def ehr_client(self) -> Any:
        if not self.settings.uses_ehr:
            return None
        from referral_service.adapters.ehr.client import FhirClient
        from referral_service.observability.metrics import observe_ehr_request

        client = FhirClient.from_settings(self.settings)
        client.on_request = observe_ehr_request
        return client

    @cached_property
    def schedule(self) -> Any:
        """The booking port's adapter: the clinic EHR's Slots, or the clinic's own chairs."""
        client = self.ehr_client
        if client is None:
            from referral_service.adapters.db.chairs import ClinicChairs

            return ClinicChairs(self.clinic, self.unit_of_work)
        return ehr_schedule(self.clinic, self.engine, client, self.settings)

    @cached_property
    def schedule_look(self) -> Any:
        """A read-only look at the same schedule (the CDS card's earliest infusion date)."""
        client = self.ehr_client
        if client is None:
            from referral_service.services.booking.earliest import ChairsLook

            return ChairsLook(self.clinic, self.unit_of_work)
        from referral_service.adapters.ehr.schedule_look import EhrScheduleLook

        return EhrScheduleLook(client, self.clinic, self.settings.ehr_schedules)

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine,
            job_attempts=self.settings.job_max_attempts,
            handlers={TaskChanged: _task_changed},
            read_only=read_only,
            form=self.policy.form,
            form_links=self.form_links,
        )

    @cached_property
    def form_links(self) -> FormLinks | None:
        """The referral form's web links; none without REFERRAL_FORM_LINK_SECRET."""
        secret = self.settings.form_link_secret
        if not secret or self.policy.form is None:
            return None
        base = (self.settings.public_url or "").rstrip("/")
        return FormLinks(secret, self.settings.form_link_days, base)

    @cached_property
    def job_handlers(self) -> dict[str, Handler]:
        """What the worker runs for each job kind (services/jobs.py names them)."""

        def plain(run: Any) -> Handler:
            return lambda job, _finish: run(self, job)

        def ending(run: Any) -> Handler:
            return lambda job, finish: run(self, job, finish)

        return {
            JobKind.EVALUATE: ending(assessment.evaluate_job),
            JobKind.BOOK: ending(booking_job.book_job),
            JobKind.CANCEL: ending(booking_job.cancel_job),
            JobKind.EHR_TASK_WRITEBACK: plain(ehr_writeback.write_back),
            JobKind.WEBHOOK_EVENT: plain(ehr_webhooks.process_event),
            JobKind.EHR_RECONCILE: plain(reconciliation.run_reconciliation),
            JobKind.EHR_HOLD_SWEEP: plain(hold_sweep.run_sweep),
            JobKind.SUBSCRIPTION_HANDSHAKE: plain(following.handshake),
            JobKind.SUBSCRIPTION_NOTIFY: plain(following.notify),
            JobKind.SUBSCRIPTION_HEARTBEAT: plain(following.heartbeat),
        }

    def run_job(self, job: Job, finish: Finish) -> str:
        handler = self.job_handlers.get(job.kind)
        if handler is None:
            raise ValueError(f"no handler for job kind {job.kind!r}")
        return handler(job, finish)

    def job_gave_up(
        self, uow: SqlUnitOfWork, job: Job, error: str, *, permanent: bool = False
    ) -> None:
        if job.kind == JobKind.SUBSCRIPTION_NOTIFY:
            following.gave_up(uow, job, error, self.now())
            return
        booking_job.gave_up(uow, job, error, self.now(), permanent=permanent)

    @cached_property
    def wake_sender(self) -> Any:
        """Nudges the worker after the API commits work; None when no address is set."""
        if self.settings.worker_wake is None:
            return None
        from referral_service.adapters.wakeup import WakeSender

        return WakeSender(self.settings.worker_wake)

    def check_configuration(self) -> None:
        """Load the policy and clinic files now, so a malformed one stops start-up."""
        _ = self.policy, self.clinic

    def alembic_config(self) -> Config:
        return migrate.alembic_config(self.settings.database_url)

    def prepare_database(self) -> None:
        """At the start of `serve` and `worker`: SQLite is migrated; PostgreSQL too, under an
        advisory lock, unless REFERRAL_AUTO_MIGRATE=0, when an old schema refuses the start
        (migrate.SchemaBehind) and `referral-service db upgrade` is the operator's step."""
        if self.engine.dialect.name == "sqlite" or self.settings.auto_migrate:
            migrate.upgrade_at_start(self.engine)
        else:
            migrate.require_current(self.engine)

    def migrate_if_sqlite(self) -> None:
        if self.engine.dialect.name == "sqlite":
            migrate.upgrade(self.engine)


# -- one booking wired from parts (the booking adapters' integration tests, tools) -------------


def schedule_for(
    clinic: Any, engine: Engine, ehr: Any, settings: Settings
) -> tuple[Any, Callable[..., SqlUnitOfWork]]:
    def unit_of_work(*, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, job_attempts=settings.job_max_attempts, read_only=read_only)

    if ehr is None:
        from referral_service.adapters.db.chairs import ClinicChairs

        return ClinicChairs(clinic, unit_of_work), unit_of_work
    return ehr_schedule(clinic, engine, ehr, settings), unit_of_work


def ehr_schedule(clinic: Any, engine: Engine, ehr: Any, settings: Settings) -> Any:
    """The EHR's schedule, its bookings one at a time per clinic (its EHR and Schedules)."""
    from referral_service.adapters.db.booking_lock import ClinicBookingLock
    from referral_service.adapters.ehr.ehr_schedule import EhrSchedule
    from referral_service.adapters.ehr.serialized import SerializedEhrSchedule

    schedule = EhrSchedule(
        ehr, clinic, settings.ehr_schedules, transactions=settings.ehr_transactions
    )
    name = " ".join([str(ehr.base_url), *sorted(settings.ehr_schedules)])
    # A booking holds the lock no longer than its job's lease: a stalled worker whose job was
    # taken over must not hold up the taker (adapters/db/booking_lock.py).
    lock = ClinicBookingLock(
        engine, name, settings.booking_lock_seconds, hold_seconds=settings.job_lease_seconds
    )
    return SerializedEhrSchedule(schedule, lock)


def book_referral(
    request: BookingRequest,
    *,
    clinic: Any,
    engine: Engine,
    ehr: Any,
    settings: Settings,
    now: datetime,
) -> BookingOutcome:
    """Book one referral on the schedule these parts make (the EHR's, or the clinic's chairs)."""
    schedule, unit_of_work = schedule_for(clinic, engine, ehr, settings)
    held = booking.find_time(schedule, request, clinic, now)
    with unit_of_work() as uow:
        return booking.book_in(uow, schedule, held, now)


def cancel_booking(referral_id: str, *, engine: Engine, ehr: Any, now: datetime) -> bool:
    """Cancel the referral's appointment (EHR and/or local). False when there was none."""
    schedule, unit_of_work = schedule_for(None, engine, ehr, Settings())
    with unit_of_work(read_only=True) as uow:
        rows = uow.appointments.series(referral_id)
    released = schedule.release(referral_id, rows)
    with unit_of_work() as uow:
        return booking.cancel_in(uow, rows, released, now)
