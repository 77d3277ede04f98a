"""Alembic, driven from code: `referral-service db upgrade`, start-up checks, test fixtures."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# pg_advisory_lock key held while migrating at start-up: replicas starting together take turns,
# and the ones after the first find the schema current. (Any constant; "referral" in ASCII.)
MIGRATION_LOCK = 0x726566657272616C


class SchemaBehind(Exception):
    """The database's schema is older than this release and start-up may not migrate it."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision(engine.url.render_as_string())


def upgrade_at_start(engine: Engine) -> None:
    """Brings the schema to head as a process starts: on PostgreSQL under a session advisory
    lock, so several replicas starting at once migrate one after another, never together."""
    if engine.dialect.name != "postgresql":
        upgrade(engine)
        return
    with engine.connect() as locker:
        locker.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            if not is_current(engine):
                upgrade(engine)
        finally:
            locker.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            locker.commit()


def require_current(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision(engine.url.render_as_string())
    if current != head:
        raise SchemaBehind(
            f"the database schema is at {current or 'nothing (empty database)'}, this release "
            f"needs {head}: run `referral-service db upgrade` (or unset REFERRAL_AUTO_MIGRATE=0)"
        )
