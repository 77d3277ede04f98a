"""Migration 0006_subs (referrers' Subscriptions and their events) matches tables.py, and goes
down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from referral_service.adapters.db import migrate
from referral_service.adapters.db.tables import metadata

TABLES = {"subscriptions", "subscription_events"}


def test_the_subscription_tables_match_tables_py(engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert not [d for d in differences if "subscription" in repr(d)], differences


def test_the_subscription_migration_goes_down_and_up(engine) -> None:
    config = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005_message")
    assert not TABLES & set(inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
