"""The worker's loop keeps its heartbeat fresh while idle and while the database is down (a
liveness probe must not restart a worker for a database outage), and stops beating when the
loop stops."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from referral_service import worker as worker_module
from referral_service.adapters.db.engine import make_engine
from referral_service.config import Settings
from referral_service.runtime import Runtime
from referral_service.worker import Worker
from tests.support.worker import running


def _beats(path: Path, worker: Worker, seconds: float) -> list[float]:
    """Run the worker for up to `seconds`, until it beats again after the heartbeat was
    backdated once; the mtimes seen. (It beats once a second; the margin is for a loaded
    machine, where the loop's first seconds can be slow.)"""
    seen = []
    with running(worker):
        deadline = time.monotonic() + 5
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.exists(), "the worker never beat"
        os.utime(path, (1.0, 1.0))  # backdate: only a later beat can make it fresh again
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            seen.append(path.stat().st_mtime)
            if seen[-1] > 1.0:
                break
            time.sleep(0.05)
    return seen


def test_an_idle_worker_beats(runtime, settings, tmp_path) -> None:
    path = tmp_path / "worker.beat"
    runtime.settings = replace(settings, worker_heartbeat_file=str(path))
    seen = _beats(path, Worker(runtime), 4.0)
    assert max(seen) > time.time() - 5, "the heartbeat was not refreshed"


def test_a_worker_whose_database_is_down_keeps_beating(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(worker_module, "OUTAGE_PAUSE_SECONDS", 0.2)
    path = tmp_path / "worker.beat"
    # Nothing listens on port 1: every connection attempt is refused at once.
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        worker_heartbeat_file=str(path),
    )
    engine = make_engine(settings.database_url)
    try:
        seen = _beats(path, Worker(Runtime(settings, engine)), 4.0)
    finally:
        engine.dispose()
    assert max(seen) > time.time() - 5, "a database outage stopped the heartbeat"


@pytest.fixture
def settings(settings):
    return replace(settings, worker_poll_seconds=0.05)
