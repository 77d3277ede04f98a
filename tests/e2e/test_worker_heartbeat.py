"""The worker's liveness probe against a real `referral-service worker` process: alive while its
loop runs, failing once the process stops making progress (SIGSTOP stands in for a hang)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.support.service import EXECUTABLE, stop


def _probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXECUTABLE, "worker-heartbeat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_probe_passes_for_a_running_worker_and_fails_for_a_hung_one(tmp_path) -> None:
    beat = tmp_path / "worker.beat"
    env = {
        **os.environ,
        "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.db'}",
        "REFERRAL_WORKER_HEARTBEAT_FILE": str(beat),
    }
    worker = subprocess.Popen(
        [EXECUTABLE, "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not beat.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = _probe(env, "--max-age", "3")
        assert alive.returncode == 0, alive.stderr
        assert "worker alive" in alive.stdout

        worker.send_signal(signal.SIGSTOP)  # the loop makes no progress from here on
        time.sleep(4.5)
        hung = _probe(env, "--max-age", "3")
        assert hung.returncode == 1, hung.stdout
        assert "hung" in hung.stderr

        worker.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while _probe(env, "--max-age", "3").returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _probe(env, "--max-age", "3").returncode == 0, "a resumed loop beats again"
    finally:
        worker.send_signal(signal.SIGCONT)
        stop(worker)
