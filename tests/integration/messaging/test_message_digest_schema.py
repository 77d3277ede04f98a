"""Migration 0008 (a received message's content digest) matches tables.py, and goes down and up
again; a row recorded before it (no digest) still answers its resend."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, update

from referral_service.adapters.db import migrate
from referral_service.adapters.db.tables import metadata, received_messages
from tests.integration.messaging.conftest import registration_message


def _columns(engine) -> set[str]:  # type: ignore[no-untyped-def]
    return {column["name"] for column in inspect(engine).get_columns("received_messages")}


def test_the_digest_column_matches_the_tables(engine) -> None:
    assert "content_digest" in _columns(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert not [d for d in differences if "received_messages" in repr(d)], differences


def test_the_digest_migration_goes_down_and_up(engine) -> None:
    config = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007_series")
    assert "content_digest" not in _columns(engine)
    migrate.upgrade(engine)
    assert "content_digest" in _columns(engine)


def test_a_message_recorded_without_a_digest_is_answered_from_the_record(
    post_message, engine
) -> None:
    first = post_message(registration_message("msg-old"))
    assert first.status_code == 200, first.text
    with engine.begin() as conn:
        conn.execute(update(received_messages).values(content_digest=None))
    changed = registration_message("msg-old")
    changed["entry"][1]["resource"]["birthDate"] = "1980-01-02"
    again = post_message(changed)  # nothing to compare with: answered as before the digest
    assert (again.status_code, again.json()) == (200, first.json())
