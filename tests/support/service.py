"""Start `referral-service serve` (or `worker`) as a real subprocess on a free loopback port."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from werkzeug.serving import make_server

EXECUTABLE = str(Path(sys.executable).with_name("referral-service"))


# Under pytest-xdist each worker hands out ports from a block of its own below the kernel's
# ephemeral range (32768-60999 on Linux), so no other worker's bind(0) or outgoing connection
# can take a port between our check and the server binding it.
_WORKER_BLOCK = 1_000
_WORKER_BASE = 20_000
_next_in_block = itertools.count()


def _worker_index() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... under xdist
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def free_port() -> int:
    index = _worker_index()
    if index is None or _WORKER_BASE + (index + 1) * _WORKER_BLOCK > 32_768:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    first = _WORKER_BASE + index * _WORKER_BLOCK
    for _ in range(_WORKER_BLOCK):
        port = first + next(_next_in_block) % _WORKER_BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # held by something else (or still by a test before us)
            return port
    raise RuntimeError(f"no free port in {first}-{first + _WORKER_BLOCK - 1}")


@dataclass
class RunningService:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until_healthy(
    base_url: str, process: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError("service did not become healthy")


@contextmanager
def serve(workdir: Path, env: dict[str, str] | None = None, *args: str) -> Iterator[RunningService]:
    port = free_port()
    log_path = workdir / f"serve-{port}.log"
    full_env = {
        **os.environ,
        "REFERRAL_DATABASE_URL": f"sqlite:///{workdir / 'service.db'}",
        "REFERRAL_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [EXECUTABLE, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=workdir,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its gunicorn and worker can be stopped with it
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process)
        yield RunningService(base_url, process, log_path)
    finally:
        stop(process, group=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 20, *, group: bool = False) -> int:
    """SIGTERM, then SIGKILL if it lingers: with `group` (a process started in a session of
    its own) the kill takes its children too, so no orphaned gunicorn or worker outlives the
    test to hold a port or load the machine for the tests after it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(process.pid, signal.SIGKILL)  # not reaped yet: still our group
            else:
                process.kill()
            process.wait()
    return int(process.returncode)


@contextmanager
def serve_in_thread(app: object) -> Iterator[str]:
    """A WSGI app served over real HTTP by werkzeug on a loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def run_documented_commands(block: str, base_url: str, cwd: Path) -> subprocess.CompletedProcess:
    """A document's shell block as written, with its `BASE=http://127.0.0.1:8080` pointed at a
    served instance; it must succeed."""
    assert "BASE=http://127.0.0.1:8080\n" in block
    script = block.replace("BASE=http://127.0.0.1:8080", f"BASE={base_url}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done
