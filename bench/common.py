"""Shared bench helpers: start a WSGI app under gunicorn, drive load from other processes."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database for one run: a fresh schema on the machine's PostgreSQL
    (dropped afterwards) or a SQLite file in workdir. Yields its SQLAlchemy URL."""
    from sqlalchemy import create_engine, text

    from referral_service.adapters.db import migrate
    from referral_service.adapters.db.engine import make_engine

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'service.db'}"
        schema = None
    elif kind == "postgresql":
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    else:
        raise ValueError(f"unknown database {kind!r}")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def listening_socket() -> socket.socket:
    """A loopback socket already bound and listening, for a server to inherit: unlike a port
    picked now and bound later by the server, nobody else can take it in between."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextmanager
def gunicorn(
    app: str,
    env: dict[str, str],
    workers: int = 2,
    *,
    sock: socket.socket | None = None,
    extra: list[str] | None = None,
    health: str = "/healthz",
    cwd: Path = ROOT,
    pids: list[int] | None = None,
) -> Iterator[str]:
    """`app` under the service's gunicorn settings (referral_service/gunicorn_conf.py);
    `extra` command-line options override them (the peer's ASGI worker class). Gunicorn
    serves on `sock` (inherited as fd://N; a new one if not given), and stops with its whole
    process group, workers included."""
    sock = sock or listening_socket()
    port = sock.getsockname()[1]
    full_env = {
        **os.environ,
        **env,
        "REFERRAL_BIND": f"127.0.0.1:{port}",  # what the app checks; gunicorn gets the fd
        "REFERRAL_WEB_CONCURRENCY": str(workers),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:referral_service.gunicorn_conf",
            "--bind",
            f"fd://{sock.fileno()}",
            *(extra or []),
            app,
        ],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        pass_fds=(sock.fileno(),),
        start_new_session=True,
    )
    sock.close()  # gunicorn holds its own copy
    base = f"http://127.0.0.1:{port}"
    if pids is not None:
        pids.append(process.pid)  # the master; cpu_seconds() counts its workers too
    try:
        wait_ready(base + health, process)
        yield base
    finally:
        stop_group(process)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until `url` answers 200; a server that exits meanwhile is reported at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM to the process's group (started with start_new_session), SIGKILL if it lingers:
    no worker outlives its bench run to load the machine or hold a port."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the leader is not reaped yet: still our group
        process.wait()


def _client(args: tuple[str, str, list[bytes], float]) -> list[float]:
    base, path, bodies, seconds = args
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline and index < len(bodies):
        started = time.perf_counter()
        conn.request(
            "POST", path, body=bodies[index], headers={"Content-Type": "application/fhir+json"}
        )
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status}")
        latencies.append(time.perf_counter() - started)
        index += 1
    conn.close()
    return latencies


def drive(base: str, path: str, bodies_per_client: list[list[bytes]], seconds: float) -> dict:
    """POST from one process per client for `seconds`; throughput and latency percentiles."""
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(len(bodies_per_client)) as pool:
        results = pool.map(_client, [(base, path, b, seconds) for b in bodies_per_client])
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)
    return {
        "requests": len(latencies),
        "throughput": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def dumps(document: dict) -> bytes:
    return json.dumps(document).encode()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pids: list[int], *, with_children: bool = True) -> float:
    """User + system CPU seconds used so far by these processes (and their live children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
        if with_children:
            todo.extend(_children(pid))
    return total


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
