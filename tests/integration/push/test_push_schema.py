"""Migration 0002 (REST push indexes) matches tables.py, and goes down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from referral_service.adapters.db import migrate
from referral_service.adapters.db.tables import metadata

PUSH_INDEXES = {
    "stored_resources": "ix_stored_resources_sender_patient",
    "stored_resource_identifiers": "ix_stored_resource_identifiers_resource",
    "referrals": "ix_referrals_sender_patient",
}


def _indexes(engine) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    inspector = inspect(engine)
    return {table: {ix["name"] for ix in inspector.get_indexes(table)} for table in PUSH_INDEXES}


def _mentions_push_index(difference: object) -> bool:
    return any(name in repr(difference) for name in PUSH_INDEXES.values())


def test_the_push_indexes_match_the_tables(engine) -> None:
    for table, index in PUSH_INDEXES.items():
        assert index in _indexes(engine)[table]
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert not [d for d in differences if _mentions_push_index(d)], differences


def test_the_push_migration_goes_down_and_up(engine) -> None:
    config = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert not any(_indexes(engine)[t] & {i} for t, i in PUSH_INDEXES.items())
    migrate.upgrade(engine)
    for table, index in PUSH_INDEXES.items():
        assert index in _indexes(engine)[table]
