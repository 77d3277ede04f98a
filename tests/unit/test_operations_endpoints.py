"""Operations blueprint: /healthz, /readyz (database, migrations, EHR) and /metrics."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from alembic.config import Config
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from referral_service.api.operations import operations_bp
from referral_service.observability import metrics

REVISION = """
revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
"""


class FakeEhr:
    def __init__(self, answer: Any, delay: float = 0.0) -> None:
        self.answer = answer
        self.delay = delay
        self.calls = 0

    def capabilities(self) -> dict:
        self.calls += 1
        time.sleep(self.delay)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def make_script_dir(root: Path, revisions: list[str]) -> Config:
    """A throwaway Alembic script directory holding a linear chain of empty revisions."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    down = None
    for rev in revisions:
        (versions / f"{rev}_step.py").write_text(REVISION.format(rev=rev, down=repr(down)))
        down = rev
    config = Config()
    config.set_main_option("script_location", str(root / "migrations"))
    return config


def stamp(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:rev)"), {"rev": revision})


def make_app(engine: Engine, alembic_config: Config, ehr_client: Any = None) -> Flask:
    app = Flask("operations-test")
    app.extensions["referral_service"] = SimpleNamespace(
        settings=SimpleNamespace(database_url=str(engine.url), ehr_base_url=None),
        engine=engine,
        ehr_client=ehr_client,
        alembic_config=lambda: alembic_config,
    )
    app.register_blueprint(operations_bp)
    return app


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def alembic_config(tmp_path: Path) -> Config:
    return make_script_dir(tmp_path, ["0001", "0002"])


CAPABILITY = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "status": "active"}


def test_healthz_answers_without_touching_dependencies(tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    client = make_app(broken, Config()).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_when_database_is_at_head_and_no_ehr_configured(engine, alembic_config) -> None:
    stamp(engine, "0002")
    response = make_app(engine, alembic_config).test_client().get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["migrations"] == {"status": "ok", "current": ["0002"], "head": ["0002"]}
    assert body["checks"]["ehr"]["status"] == "skipped"


def test_not_ready_when_migrations_are_pending(engine, alembic_config) -> None:
    stamp(engine, "0001")
    response = make_app(engine, alembic_config).test_client().get("/readyz")
    assert response.status_code == 503
    migrations = response.get_json()["checks"]["migrations"]
    assert migrations["status"] == "failed"
    assert migrations["error"] == "migrations-pending"
    assert (migrations["current"], migrations["head"]) == (["0001"], ["0002"])


def test_old_release_stays_ready_when_a_newer_one_migrated_the_database(
    engine, alembic_config
) -> None:
    stamp(engine, "0003")  # a revision this release's script directory does not know
    response = make_app(engine, alembic_config).test_client().get("/readyz")
    assert response.status_code == 200
    migrations = response.get_json()["checks"]["migrations"]
    assert migrations["note"] == "database-ahead-of-release"
    assert migrations["current"] == ["0003"]


def test_not_ready_on_a_database_never_migrated(engine, alembic_config) -> None:
    response = make_app(engine, alembic_config).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"]["current"] == []


def test_not_ready_when_database_unreachable_and_no_details_leak(tmp_path, alembic_config) -> None:
    secret_path = tmp_path / "no-such-dir" / "s3cret.db"
    broken = create_engine(f"sqlite:///{secret_path}")
    response = make_app(broken, alembic_config).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"status": "failed", "error": "OperationalError"}
    assert body["checks"]["migrations"]["status"] == "skipped"
    assert "s3cret" not in response.get_data(as_text=True)


def test_ready_with_a_reachable_ehr(engine, alembic_config) -> None:
    stamp(engine, "0002")
    app = make_app(engine, alembic_config, FakeEhr(CAPABILITY))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["ehr"] == {"status": "ok", "fhirVersion": "4.0.1"}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (ConnectionError("ehr.example:443 refused"), "ConnectionError"),
        (TimeoutError(), "TimeoutError"),
        ({"resourceType": "OperationOutcome"}, "not-a-capability-statement"),
    ],
)
def test_not_ready_when_ehr_fails(engine, alembic_config, answer, error) -> None:
    stamp(engine, "0002")
    response = make_app(engine, alembic_config, FakeEhr(answer)).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["ehr"] == {"status": "failed", "error": error}
    assert body["checks"]["database"]["status"] == "ok"
    assert "refused" not in response.get_data(as_text=True)


def test_metrics_endpoint_exposes_prometheus_text(engine, alembic_config, monkeypatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    metrics.decision_made("eligible")
    response = make_app(engine, alembic_config).test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text_body = response.get_data(as_text=True)
    assert 'referral_decisions_total{outcome="eligible"}' in text_body
    assert "# TYPE referral_ehr_request_duration_seconds histogram" in text_body


@pytest.mark.serial  # wall-clock bound: `make test` runs it alone, after the parallel tests
def test_ehr_check_answers_within_its_deadline_when_the_ehr_hangs(
    engine, alembic_config, monkeypatch
) -> None:
    monkeypatch.setattr("referral_service.api.operations.EHR_CHECK_DEADLINE_SECONDS", 0.2)
    stamp(engine, "0002")
    app = make_app(engine, alembic_config, FakeEhr(CAPABILITY, delay=1.0))
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    assert time.monotonic() - started < 0.9
    assert response.status_code == 503
    assert response.get_json()["checks"]["ehr"] == {
        "status": "failed",
        "error": "deadline-exceeded",
    }


def test_ehr_check_result_is_reused_between_probes(engine, alembic_config, monkeypatch) -> None:
    stamp(engine, "0002")
    ehr = FakeEhr(CAPABILITY)
    client = make_app(engine, alembic_config, ehr).test_client()
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert ehr.calls == 1
    monkeypatch.setattr("referral_service.api.operations.EHR_CHECK_CACHE_SECONDS", 0.0)
    assert client.get("/readyz").status_code == 200
    assert ehr.calls == 2
