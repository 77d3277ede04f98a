"""The running service's shared parts: settings, database engine, policy, clinic, EHR client.

Built once per process (API or worker); the API keeps it in `app.extensions["referral_service"]`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from alembic.config import Config
from sqlalchemy import Engine

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from referral_service.config import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


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
