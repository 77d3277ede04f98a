"""Intake cost (issue 20), in ONE run, same gunicorn settings, same load generator (bench/load.py,
16 keep-alive connections, a fresh identifier per request):

- bare:    a Flask app that only parses the JSON (bench/bare_app.py); also the load generator's
           own ceiling
- floor:   fhir.resources R4B validation + one INSERT/COMMIT on PostgreSQL (bench/floor_app.py)
- peer:    SEKMET (sekmet-fhir) creating the same ServiceRequest (FastAPI, under gunicorn with
           uvicorn workers; simulator disabled, log_inbound false, no auth)
- service: referral_service on PostgreSQL with its worker running beside it, as in production

    .venv/bin/python bench/intake.py [--seconds 10] [--connections 16] [--workers 2]

Targets (issue 20, same run): service >= 0.6 x floor, service >= 2 x peer, service p99 <= 3 x
floor p99.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench/ and tests/ live beside it
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    cpu_seconds,
    database,
    dumps,
    gunicorn,
    listening_socket,
    stop_group,
)
from bench.floor_app import TABLE_DDL  # noqa: E402
from bench.load import MARKER, drive  # noqa: E402
from tests.support.referrals import eligible_referral  # noqa: E402

APPS = ("bare", "floor", "peer", "service")
PATH = "/fhir/ServiceRequest"
UVICORN_WORKER = "uvicorn.workers.UvicornWorker"


def _template() -> bytes:
    return dumps(eligible_referral(MARKER.decode()))


@contextmanager
def _peer(workdir: Path, workers: int, pids: dict[str, list[int]]) -> Iterator[str]:
    sock = listening_socket()
    port = sock.getsockname()[1]
    settings = {
        "base_url": f"http://127.0.0.1:{port}/fhir",
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(workdir / "sekmet-data"),
        "own_private_key_path": str(workdir / "sekmet_private.pem"),
        "simulator": {"enabled": False},
        "log_inbound": False,
        "server_auth": {"types": ["none"]},
    }
    config = workdir / "sekmet.yaml"
    config.write_text(yaml.safe_dump(settings))
    env = {"SEKMET_CONFIG": str(config)}
    with gunicorn(
        "sekmet.main:app_factory()",
        env,
        workers,
        sock=sock,
        extra=["-k", UVICORN_WORKER],
        health="/fhir/metadata",
        cwd=workdir,
        pids=pids["web"],
    ) as base:
        yield base


@contextmanager
def _service(url: str, workers: int, pids: dict[str, list[int]]) -> Iterator[str]:
    env = {
        "REFERRAL_DATABASE_URL": url,
        # One client IP drives all the load: the per-client limit would throttle the load
        # generator, not measure intake. The limiter itself still runs.
        "REFERRAL_RATE_LIMIT": "10000000/minute",
    }
    executable = str(Path(sys.executable).with_name("referral-service"))
    # The worker's own application_name: its PostgreSQL backends are counted apart.
    worker_url = url.replace(
        "application_name=bench-intake-service", "application_name=bench-intake-worker"
    )
    worker = subprocess.Popen(
        [executable, "worker"],
        env={**os.environ, **env, "REFERRAL_DATABASE_URL": worker_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        start_new_session=True,
    )
    pids["worker"].append(worker.pid)
    try:
        with gunicorn("referral_service.wsgi:app", env, workers, pids=pids["web"]) as base:
            yield base
    finally:
        stop_group(worker)


def _create_floor_table(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(TABLE_DDL))
    engine.dispose()


def _backends(url: str, application_name: str) -> list[int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": application_name},
        ).scalars()
        found = [int(pid) for pid in pids]
    engine.dispose()
    return found


def _cpu(pids: dict[str, list[int]], backends: dict[str, list[int]]) -> dict[str, float]:
    return {
        "web": cpu_seconds(pids["web"]),
        "db": cpu_seconds(backends["web"], with_children=False),
        "worker": cpu_seconds(pids["worker"]),
        "worker db": cpu_seconds(backends["worker"], with_children=False),
    }


def run(seconds: float, connections: int = 16, workers: int = 2, warmup: float = 2.0) -> dict:
    """Each app in turn; also the CPU its processes (web, the service's worker, its PostgreSQL
    backends, found by application_name) spent per request while measured."""
    template = _template()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        _create_floor_table(url)

        def app_url(name: str) -> str:
            return f"{url}&application_name=bench-intake-{name}"

        starters = {
            "bare": lambda p: gunicorn(
                "bench.bare_app:app", {"REFERRAL_DATABASE_URL": url}, workers, pids=p["web"]
            ),
            "floor": lambda p: gunicorn(
                "bench.floor_app:app",
                {"REFERRAL_DATABASE_URL": app_url("floor")},
                workers,
                pids=p["web"],
            ),
            "peer": lambda p: _peer(Path(tmp), workers, p),
            "service": lambda p: _service(app_url("service"), workers, p),
        }
        for name in APPS:
            pids: dict[str, list[int]] = {"web": [], "worker": []}
            with starters[name](pids) as base:
                drive(base, PATH, template, warmup, connections)
                backends = {
                    "web": _backends(url, f"bench-intake-{name}"),
                    "worker": _backends(url, "bench-intake-worker"),
                }
                before = _cpu(pids, backends)
                result = drive(base, PATH, template, seconds, connections)
                after = _cpu(pids, backends)
            result["cpu_ms"] = {
                part: (after[part] - before[part]) * 1000 / result["requests"] for part in after
            }
            results[name] = result
    return {**results, **ratios(results)}


def ratios(r: dict) -> dict:
    return {
        "service_floor": r["service"]["throughput"] / r["floor"]["throughput"],
        "service_peer": r["service"]["throughput"] / r["peer"]["throughput"],
        "p99_service_floor": r["service"]["p99_ms"] / r["floor"]["p99_ms"],
        "floor_bare": r["floor"]["throughput"] / r["bare"]["throughput"],
        "service_bare": r["service"]["throughput"] / r["bare"]["throughput"],
    }


TARGETS = (
    # key, label, test, target text
    ("service_floor", "service / floor throughput", lambda x: x >= 0.6, ">= 0.60"),
    ("service_peer", "service / peer throughput", lambda x: x >= 2.0, ">= 2.00"),
    ("p99_service_floor", "service p99 / floor p99", lambda x: x <= 3.0, "<= 3.00"),
)


def report(result: dict) -> list[str]:
    lines = []
    for name in APPS:
        r = result[name]
        lines.append(
            f"{name:8} {r['throughput']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
            f"p99 {r['p99_ms']:7.1f} ms  ({r['requests']} requests)  CPU/request: "
            + ", ".join(f"{part} {ms:.1f} ms" for part, ms in r["cpu_ms"].items() if ms)
        )
    for key, label, met, target in TARGETS:
        verdict = "meets" if met(result[key]) else "MISSES"
        lines.append(f"{label:28} {result[key]:6.2f}  target {target}  {verdict}")
    lines.append(f"{'floor / bare throughput':28} {result['floor_bare']:6.2f}  (context)")
    lines.append(f"{'service / bare throughput':28} {result['service_bare']:6.2f}  (context)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args(argv)
    result = run(args.seconds, args.connections, args.workers, args.warmup)
    print("\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
