"""Fixtures for the security tests: the app with REFERRAL_AUTH=jwt on a public key file, and
helpers to call it as a given referring system or as staff."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from referral_service.adapters.db import tables
from referral_service.config import Settings
from referral_service.runtime import Runtime
from tests.security.tokens import (
    AUDIENCE,
    ISSUER,
    REFERRER_SCOPES,
    KeyPair,
    bearer,
    claims,
    rsa_pair,
    sign,
)

# Tables a refused request must leave untouched.
CLINICAL_TABLES = (
    tables.referrals,
    tables.referral_versions,
    tables.referral_identifiers,
    tables.tasks,
    tables.appointments,
    tables.jobs,
    tables.referral_events,
    tables.stored_resources,
)


def stored_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in CLINICAL_TABLES
        }


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head, copied for each test (Alembic per test is slow)."""
    from referral_service.adapters.db import migrate
    from referral_service.adapters.db.engine import make_engine

    path = tmp_path_factory.mktemp("template") / "referrals.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite_template: Path) -> str:
    path = tmp_path / "referrals.db"
    shutil.copyfile(migrated_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite by default here; the modules where storage matters (isolation, audit, PHI) run
    on PostgreSQL too through `both_databases`."""
    return sqlite_url


def both_databases(request: pytest.FixtureRequest) -> str:
    """Body of a module-level `database_url` fixture parametrized over sqlite and postgresql."""
    name = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def signing_key() -> KeyPair:
    return rsa_pair()


@pytest.fixture
def public_key_file(tmp_path: Path, signing_key: KeyPair) -> str:
    path = tmp_path / "referrers.pem"
    path.write_bytes(signing_key.public_pem)
    return str(path)


def jwt_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "auth": "jwt",
        "jwt_audience": AUDIENCE,
        "jwt_issuer": ISSUER,
        "job_backoff_base_seconds": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def auth_app(database_url: str, engine: Engine, clock: Any, public_key_file: str):  # type: ignore[no-untyped-def]
    from referral_service.api.app import create_app

    runtime = Runtime(jwt_settings(database_url, jwt_public_key_file=public_key_file), engine)
    runtime.now = clock
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def auth_client(auth_app):  # type: ignore[no-untyped-def]
    return auth_app.test_client()


@pytest.fixture
def as_client(signing_key: KeyPair) -> Callable[..., dict[str, str]]:
    """Headers for a request as referring system `client` with `scope`."""

    def headers(client: str = "er-north", scope: str = REFERRER_SCOPES) -> dict[str, str]:
        return {
            **bearer(sign(signing_key, claims(client, scope))),
            "Content-Type": "application/fhir+json",
        }

    return headers
