"""The suite's fresh databases (tests/support/migrated.py) are as good as migrating one per
test: at head, empty, sequences from 1, and never shared while a test holds one; a schema a
test changed is dropped, not handed on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.tables import referral_events, referrals
from tests.conftest import POSTGRES_URL
from tests.support.migrated import MigratedTemplates, _catalog

NOW = datetime(2026, 11, 23, 14, tzinfo=UTC)


@pytest.fixture
def templates(tmp_path: Path, postgres_url: str):  # type: ignore[no-untyped-def]
    templates = MigratedTemplates(tmp_path, POSTGRES_URL)
    yield templates
    templates.close()


def _engine(schema: str):  # type: ignore[no-untyped-def]
    return make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")


def _write_a_referral_and_an_event(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(
            insert(referrals),
            {
                "id": "r1",
                "sender": "clinic-a",
                "version_id": 1,
                "status": "active",
                "intent": "order",
                "source": "test",
                "resource": {},
                "supporting": {},
                "received_at": NOW,
                "last_updated": NOW,
            },
        )
        inserted = conn.execute(
            insert(referral_events).returning(referral_events.c.id),
            {"referral_id": "r1", "kind": "received", "at": NOW, "detail": {}},
        )
        return int(inserted.scalar_one())


def test_a_returned_schema_comes_back_empty_at_head_with_its_sequences_restarted(
    templates,
) -> None:
    templates.create_schema("t_pool_first", migrated=True)
    first = _engine("t_pool_first")
    assert migrate.is_current(first)
    assert _write_a_referral_and_an_event(first) == 1
    first.dispose()
    templates.release_schema("t_pool_first")

    templates.create_schema("t_pool_second", migrated=True)  # the same schema, renamed
    second = _engine("t_pool_second")
    try:
        assert migrate.is_current(second)
        with second.connect() as conn:
            assert conn.execute(select(referrals.c.id)).all() == []
        assert _write_a_referral_and_an_event(second) == 1, "the serial starts again at 1"
        with templates.admin.connect() as conn:
            assert _catalog(conn, "t_pool_second") == templates._shape
            names = conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't_pool_%'")
            ).scalars()
            assert list(names) == ["t_pool_second"]
    finally:
        second.dispose()
        templates.release_schema("t_pool_second")


def test_two_tests_at_once_never_share_a_schema(templates) -> None:
    templates.create_schema("t_pool_a", migrated=True)
    templates.create_schema("t_pool_b", migrated=True)
    a, b = _engine("t_pool_a"), _engine("t_pool_b")
    try:
        _write_a_referral_and_an_event(a)
        with b.connect() as conn:
            assert conn.execute(select(referrals.c.id)).all() == []
    finally:
        a.dispose()
        b.dispose()
        templates.release_schema("t_pool_a")
        templates.release_schema("t_pool_b")


def test_a_schema_a_test_changed_is_dropped_not_handed_on(templates) -> None:
    templates.create_schema("t_pool_changed", migrated=True)
    engine = _engine("t_pool_changed")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE jobs ADD COLUMN left_behind integer"))
    engine.dispose()
    templates.release_schema("t_pool_changed")
    assert templates._pool == []
    with templates.admin.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = 't_pool_changed'")
        ).scalar_one()
    assert left == 0


def test_an_empty_schema_stays_empty_for_tests_that_migrate_it_themselves(templates) -> None:
    templates.create_schema("t_pool_empty", migrated=False)
    engine = _engine("t_pool_empty")
    try:
        assert migrate.current_revision(engine) is None
    finally:
        engine.dispose()
        templates.release_schema("t_pool_empty")


def test_a_sqlite_copy_is_at_head_and_its_own(templates, tmp_path: Path) -> None:
    one, two = (
        make_engine(f"sqlite:///{tmp_path / 'one.db'}"),
        make_engine(f"sqlite:///{tmp_path / 'two.db'}"),
    )
    templates.migrate(one)
    templates.migrate(two)
    assert migrate.is_current(one) and migrate.is_current(two)
    _write_a_referral_and_an_event(one)
    with two.connect() as conn:
        assert conn.execute(select(referrals.c.id)).all() == []
    one.dispose()
    two.dispose()
