"""`serve` and `worker` on PostgreSQL, as an operator starts them: an empty database is
migrated at start (replicas starting together take turns under an advisory lock), or, with
REFERRAL_AUTO_MIGRATE=0, refused in one line that names the command to run."""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import create_engine

from referral_service.adapters.db import migrate
from tests.support.service import EXECUTABLE, serve


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "REFERRAL_DATABASE_URL": database_url, **extra}


def _revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


def test_serve_on_an_empty_postgres_database_migrates_and_answers(
    tmp_path, fresh_postgres_url
) -> None:
    with serve(tmp_path, {"REFERRAL_DATABASE_URL": fresh_postgres_url}) as service:
        assert service.process.poll() is None
    assert _revision(fresh_postgres_url) == migrate.head_revision(fresh_postgres_url)


def test_workers_starting_together_on_an_empty_database_take_turns(fresh_postgres_url) -> None:
    starts = [
        subprocess.Popen(
            [EXECUTABLE, "worker", "--once"],
            env=_env(fresh_postgres_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(process.wait(timeout=120), process.stderr.read()) for process in starts]
    for process in starts:
        process.stdout.close()
        process.stderr.close()
    assert [code for code, _ in results] == [0, 0, 0, 0], [err[-800:] for _, err in results]
    assert _revision(fresh_postgres_url) == migrate.head_revision(fresh_postgres_url)


def test_without_auto_migrate_an_old_schema_is_one_clear_line(fresh_postgres_url) -> None:
    for command in (["worker", "--once"], ["serve", "--port", "0"]):
        done = subprocess.run(
            [EXECUTABLE, *command],
            env=_env(fresh_postgres_url, REFERRAL_AUTO_MIGRATE="0"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0, done.stderr
        assert "referral-service db upgrade" in done.stderr
    assert _revision(fresh_postgres_url) is None, "nothing was migrated"


def test_an_unreachable_database_is_one_clear_line() -> None:
    done = subprocess.run(
        [EXECUTABLE, "worker", "--once"],
        env=_env("postgresql+psycopg://nobody:secret@127.0.0.1:9/none"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.startswith("Error: cannot reach")
    assert "secret" not in done.stderr
