"""PostgreSQL wakes idle workers on any host: the jobs table's insert trigger NOTIFYs when a
transaction that queued work commits, and the worker LISTENs (no UDP wake-up here)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from referral_service.adapters.db import job_notify, migrate, outbox
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.job_notify import (
    JobNotifyListener,
    channel_for,
    open_job_listener,
)
from referral_service.config import Settings
from referral_service.worker import Worker
from tests.support.worker import assert_idle_worker_takes_a_new_referral

LONG_POLL_SECONDS = 60.0  # only a notification can explain a prompt run
NOW = datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture
def database_url(fresh_postgres_url: str) -> str:
    return fresh_postgres_url  # NOTIFY is PostgreSQL's; SQLite uses the UDP wake-up


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, worker_wake=None, worker_poll_seconds=LONG_POLL_SECONDS)


@pytest.fixture
def listener(engine):
    opened = open_job_listener(engine)
    assert isinstance(opened, JobNotifyListener) and opened.listening
    yield opened
    opened.close()


def _enqueue(engine, key: str, commit: bool = True) -> None:
    with engine.connect() as conn:
        outbox.enqueue(conn, "evaluate", now=NOW, max_attempts=3, dedupe_key=key)
        if commit:
            conn.commit()
        else:
            conn.rollback()


def test_a_committed_job_wakes_the_listener_and_a_rolled_back_one_does_not(
    engine, listener
) -> None:
    assert listener.wait(0.05) is False
    _enqueue(engine, "rolled-back", commit=False)
    assert listener.wait(0.3) is False
    _enqueue(engine, "committed")
    assert listener.wait(5.0) is True
    assert listener.wait(0.05) is False, "one commit, one wake-up"


def test_a_lane_wakes_only_for_the_kinds_it_takes(engine) -> None:
    """The notification names the job's kind (migration 0010): a queued booking does not send
    the decisions lane to claim nothing, nor a decision the EHR lane."""
    from referral_service.worker_lanes import DECISIONS, EHR_WORK

    decisions = open_job_listener(engine, DECISIONS.takes)
    ehr = open_job_listener(engine, EHR_WORK.takes)
    assert decisions is not None and ehr is not None
    try:
        with engine.begin() as conn:
            outbox.enqueue(conn, "book", now=NOW, max_attempts=3)
        assert ehr.wait(5.0) is True
        assert decisions.wait(0.3) is False, "a booking woke the decisions lane"
        _enqueue(engine, "a-decision")
        assert decisions.wait(5.0) is True
        assert ehr.wait(0.3) is False, "a decision woke the EHR lane"
    finally:
        decisions.close()
        ehr.close()


def test_an_idle_worker_with_no_udp_wake_up_takes_a_new_referral_at_once(
    client, runtime, engine
) -> None:
    assert_idle_worker_takes_a_new_referral(client, runtime, engine, "notify-1")


def test_a_lost_notification_connection_is_replaced(engine, listener, monkeypatch) -> None:
    monkeypatch.setattr(job_notify, "RECONNECT_EVERY_SECONDS", 0.1)
    with engine.begin() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query = :listen AND pid <> pg_backend_pid()"
            ),
            {"listen": f'LISTEN "{listener.channel}"'},
        )
    deadline = time.monotonic() + 5
    while listener.listening and time.monotonic() < deadline:
        listener.wait(0.2)  # the broken connection turns readable; the listener drops it
    assert not listener.listening
    time.sleep(0.15)
    listener.wait(0.01)  # reconnects once the pause is over
    assert listener.listening
    _enqueue(engine, "after-reconnect")
    assert listener.wait(5.0) is True


def test_listening_can_be_turned_off_for_transaction_pooling(runtime, settings) -> None:
    runtime.settings = replace(settings, worker_listen=False)
    assert Worker(runtime)._open_wake_up() is None  # no UDP address either: it polls
    assert Settings.from_env({"REFERRAL_WORKER_LISTEN": "0"}).worker_listen is False
    assert Settings.from_env({}).worker_listen is True


def test_the_trigger_comes_and_goes_with_its_migration(engine) -> None:
    from alembic import command

    from referral_service.adapters.db import migrate

    def triggers() -> list[str]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "WHERE c.relname = 'jobs' AND c.relnamespace = "
                        "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
                    )
                ).scalars()
            )

    assert triggers() == ["jobs_notify"]
    config = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert triggers() == []
    migrate.upgrade(engine)
    assert triggers() == ["jobs_notify"]


def test_only_jobs_turning_pending_notify(engine, listener) -> None:
    _enqueue(engine, "first")
    assert listener.wait(5.0) is True
    with engine.begin() as conn:
        job = outbox.claim(conn, worker_id="w1", now=NOW, lease_seconds=60)
    assert job is not None
    assert listener.wait(0.3) is False, "a claim wakes nobody"
    _enqueue(engine, "first")  # the same dedupe key: skipped, so nothing new to do
    assert listener.wait(0.3) is False
    with engine.begin() as conn:
        outbox.retry_later(conn, job, worker_id="w1", now=NOW, error="x", backoff_base=0.0)
    assert listener.wait(5.0) is True, "a job put back for a retry is work again"
    with engine.begin() as conn:
        job = outbox.claim(conn, worker_id="w1", now=NOW, lease_seconds=60)
        assert job is not None
        outbox.complete(conn, job, worker_id="w1", now=NOW)
    assert listener.wait(0.3) is False, "a completion wakes nobody"


def test_no_listening_until_the_trigger_exists(engine, monkeypatch) -> None:
    """A worker ahead of migration 0003 keeps its fast poll, and listens once it is applied."""
    from alembic import command

    from referral_service.adapters.db import migrate

    monkeypatch.setattr(job_notify, "RECONNECT_EVERY_SECONDS", 0.1)
    config = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    listener = open_job_listener(engine)
    assert listener is not None
    try:
        assert not listener.listening
        migrate.upgrade(engine)
        time.sleep(0.15)
        listener.wait(0.01)  # the next try finds the trigger
        assert listener.listening
        _enqueue(engine, "after-migration")
        assert listener.wait(5.0) is True
    finally:
        listener.close()


def test_a_notified_worker_claims_at_once_without_a_look_first(
    client, runtime, engine, monkeypatch
) -> None:
    """The notification says a job was queued: the worker goes straight to the claim (one
    transaction fewer per hand-off); only its first idle round looks before claiming."""
    looks: list[str] = []
    real_has_due = outbox.has_due

    def has_due(conn, **kwargs):  # type: ignore[no-untyped-def]
        looks.append(kwargs["lane"].name)
        return real_has_due(conn, **kwargs)

    monkeypatch.setattr(outbox, "has_due", has_due)
    assert_idle_worker_takes_a_new_referral(client, runtime, engine, "notify-claim")
    assert len(looks) == 1, looks


def _schema(engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def test_each_schema_notifies_a_channel_of_its_own(engine, listener, postgres_url) -> None:
    """Channels span the database: another deployment (or test run) in a schema of the same
    database must not wake this one's workers, nor this one theirs."""
    assert listener.channel == f"referral_jobs:{_schema(engine)}"
    neighbour_schema = f"n_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{neighbour_schema}"'))
    neighbour = make_engine(f"{postgres_url}?options=-csearch_path%3D{neighbour_schema}")
    try:
        migrate.upgrade(neighbour)
        theirs = open_job_listener(neighbour)
        assert theirs is not None and theirs.listening
        try:
            _enqueue(neighbour, "theirs")
            assert listener.wait(0.5) is False, "a neighbour's job woke this schema's worker"
            assert theirs.wait(5.0) is True
            _enqueue(engine, "ours")
            assert listener.wait(5.0) is True
            assert theirs.wait(0.5) is False
        finally:
            theirs.close()
    finally:
        neighbour.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{neighbour_schema}" CASCADE'))
        admin.dispose()


def test_a_schema_name_too_long_for_a_channel_still_notifies(postgres_url) -> None:
    """Channel names stop at 63 bytes: the trigger and the listener both fall back to the
    schema name's md5, and an enqueue never fails for the name."""
    long_schema = f"long_{'x' * 44}_{uuid.uuid4().hex[:12]}"  # 62 characters
    assert channel_for(long_schema) != f"referral_jobs:{long_schema}"
    assert len(channel_for(long_schema).encode()) <= 63
    assert channel_for("public") == "referral_jobs:public"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{long_schema}"'))
    engine = make_engine(f"{postgres_url}?options=-csearch_path%3D{long_schema}")
    try:
        migrate.upgrade(engine)
        listener = open_job_listener(engine)
        assert listener is not None and listener.listening
        try:
            assert listener.channel == channel_for(long_schema)
            _enqueue(engine, "long")
            assert listener.wait(5.0) is True
        finally:
            listener.close()
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{long_schema}" CASCADE'))
        admin.dispose()
