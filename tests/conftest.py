"""Shared fixtures: a clean database per test on SQLite and on the machine's PostgreSQL, the app
on top of it, and a runtime whose clock tests can set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from referral_service.adapters.db.engine import make_engine
from referral_service.config import Settings
from referral_service.runtime import Runtime
from tests.support.migrated import MigratedTemplates

pytest_plugins = ["tests.support.sekmet"]


POSTGRES_URL = os.environ.get(
    "REFERRAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}; start it (see README)")
    return POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'referrals.db'}"


@pytest.fixture(scope="session")
def migrated_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MigratedTemplates]:
    """Migrated databases to copy (SQLite) or to rename (PostgreSQL): tests/support/migrated."""
    templates = MigratedTemplates(tmp_path_factory.mktemp("migrated"), POSTGRES_URL)
    yield templates
    templates.close()


@pytest.fixture
def fresh_postgres_url(
    postgres_url: str, migrated_templates: MigratedTemplates, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A schema of its own for one test, gone afterwards. Empty, unless the test migrates it
    anyway (it uses `engine`): then it comes migrated, with empty tables."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    migrated_templates.create_schema(schema, migrated="engine" in request.fixturenames)
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    migrated_templates.release_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test using this runs twice: on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def engine(database_url: str, migrated_templates: MigratedTemplates) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrated_templates.migrate(engine)  # = migrate.upgrade(engine), without alembic per test
    yield engine
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def default_policy_loaded_once() -> Iterator[None]:
    """Runtimes load the built-in policy (a frozen Policy) once per session, not once per test;
    a policy file of a test's own is still loaded, and tests of loading call it directly."""
    from referral_service.domain import policy

    load_policy = policy.load_policy
    default = load_policy(None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            policy, "load_policy", lambda path=None: load_policy(path) if path else default
        )
        yield


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, job_backoff_base_seconds=0.0)


@pytest.fixture
def runtime(settings: Settings, engine: Engine, clock: FixedClock) -> Runtime:
    runtime = Runtime(settings, engine)
    runtime.now = clock
    return runtime


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    from referral_service.api.app import create_app

    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()
