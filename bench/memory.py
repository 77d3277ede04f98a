"""Memory: RSS of every process of `referral-service serve` while it takes 10,000 referrals.

    .venv/bin/python bench/memory.py [--referrals 10000] [--clients 4] [--workers 2] [--sqlite]

Runs `referral-service serve` (a fresh PostgreSQL schema on 127.0.0.1:5432/test by default, or
a temporary SQLite file with --sqlite; local scheduling, rate limit lifted) and POSTs eligible
referrals from several client processes. After every tenth of the referrals it reads VmRSS from
/proc/<pid>/status of each process under the serve process (gunicorn master and workers, the
background worker), found by walking /proc parent links. The background worker lags intake,
so afterwards it keeps sampling as the queue drains (up to --drain-seconds) and once more when it
is empty; its growth is taken from when it had processed half the referrals to the end.

Target (issue 7): < 150 MB RSS per worker after 10,000 referrals, and no growth over the last
half (here: growth between the 50% and 100% marks within GROWTH_TOLERANCE_MB per process).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from bench.common import database  # noqa: E402
from tests.support.referrals import FHIR_JSON, eligible_referral  # noqa: E402
from tests.support.service import EXECUTABLE, free_port, stop, wait_until_healthy  # noqa: E402

TARGET_RSS_MB = 150.0
GROWTH_TOLERANCE_MB = 5.0  # allocator noise; "no growth" means within this


# -- processes -----------------------------------------------------------------------------------


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def processes(root: int) -> dict[str, int]:
    """role -> pid for the processes under `root` (the serve process)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _ppid(int(entry))
            if ppid is not None:
                parents[int(entry)] = ppid
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    roles: dict[str, int] = {}
    for pid in sorted(children.get(root, [])):
        command = _cmdline(pid)
        if "gunicorn" in command:
            roles["gunicorn master"] = pid
            for number, worker in enumerate(sorted(children.get(pid, [])), 1):
                roles[f"gunicorn worker {number}"] = worker
        elif "worker" in command:
            roles["background worker"] = pid
        else:
            roles[f"other {pid}"] = pid
    return roles


def is_worker(role: str) -> bool:
    return role.startswith("gunicorn worker") or role == "background worker"


# -- load ----------------------------------------------------------------------------------------


def _client(args: tuple[str, int]) -> int:
    base, count = args
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    for _ in range(count):
        body = json.dumps(eligible_referral(f"bench-memory-{uuid.uuid4().hex}")).encode()
        conn.request(
            "POST",
            "/fhir/ServiceRequest",
            body=body,
            headers={"Content-Type": FHIR_JSON, "Prefer": "return=minimal"},
        )
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"HTTP {response.status}")
    conn.close()
    return count


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


# -- the run -------------------------------------------------------------------------------------


def _queue(url: str) -> int:
    from referral_service.adapters.db import outbox
    from referral_service.adapters.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return outbox.queue_stats(conn, now=datetime.now(UTC))[0]
    finally:
        engine.dispose()


def run(
    referrals: int = 10_000,
    clients: int = 4,
    workers: int = 2,
    sqlite: bool = False,
    drain_seconds: float = 600,
    verbose: bool = False,
) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    databases = contextlib.ExitStack()  # closed in the finally below
    url = databases.enter_context(database("sqlite" if sqlite else "postgresql", workdir))
    port = free_port()
    env = {
        **os.environ,
        "REFERRAL_DATABASE_URL": url,
        "REFERRAL_LOG_LEVEL": "WARNING",
        "REFERRAL_RATE_LIMIT": "100000000/minute",
    }
    env.pop("REFERRAL_EHR_BASE_URL", None)
    log = open(workdir / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [
            EXECUTABLE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    samples: list[dict] = []
    try:
        wait_until_healthy(base, process)
        step = max(1, referrals // 10)
        marks = list(range(step, referrals + 1, step))
        if marks[-1] != referrals:
            marks.append(referrals)

        def sample(label: str, sent: int) -> None:
            roles = processes(process.pid)
            row = {
                "label": label,
                "sent": sent,
                "seconds": time.perf_counter() - started,
                "queued": _queue(url),
                "rss": {r: rss_mb(p) for r, p in roles.items()},
                "pids": roles,
            }
            samples.append(row)
            if verbose:
                print(
                    f"  {label:>8}: {row['seconds']:5.0f} s, {row['queued']} jobs queued, "
                    + ", ".join(f"{r} {v:.1f}" for r, v in row["rss"].items() if v),
                    flush=True,
                )

        started = time.perf_counter()
        sample("start", 0)
        sent = 0
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            for mark in marks:
                sent += sum(pool.map(_client, [(base, n) for n in _split(mark - sent, clients)]))
                sample(f"{sent}", sent)
        send_seconds = time.perf_counter() - started
        # The background worker lags intake: keep sampling as it works off the backlog, so its
        # RSS is also seen after it has processed every referral.
        deadline = time.monotonic() + drain_seconds
        last_queued = samples[-1]["queued"]
        while (queued := _queue(url)) and time.monotonic() < deadline:
            if queued <= last_queued - step:
                sample("draining", sent)
                last_queued = samples[-1]["queued"]
            time.sleep(1)
        sample("drained" if not _queue(url) else "timeout", sent)
    finally:
        stop(process)
        log.close()
        databases.close()
    # Web processes: the 50% and 100% intake marks. The background worker: the first sample at
    # which it had worked through half the referrals (sent - queued jobs, about one open job per
    # unfinished referral) and the last sample (drained).
    half = next(s for s in samples if s["sent"] >= referrals // 2 and s["label"].isdigit())
    full = next(s for s in samples if s["sent"] == referrals and s["label"].isdigit())
    last = samples[-1]
    worker_half = next((s for s in samples if s["sent"] - s["queued"] >= referrals // 2), last)
    roles = [r for r in full["rss"] if is_worker(r)]
    growth = {r: (full["rss"][r] or 0) - (half["rss"].get(r) or 0) for r in full["rss"]}
    if "background worker" in last["rss"]:
        growth["background worker"] = (last["rss"]["background worker"] or 0) - (
            worker_half["rss"].get("background worker") or 0
        )
    pid_changed = [r for r in roles if half["pids"].get(r) != last["pids"].get(r)]
    worst = max((last["rss"][r] or 0) for r in roles) if roles else float("nan")
    worst_at_full = max((full["rss"][r] or 0) for r in roles) if roles else float("nan")
    worst_growth = max(growth[r] for r in roles) if roles else float("nan")
    return {
        "referrals": referrals,
        "clients": clients,
        "workers": workers,
        "database": "sqlite" if sqlite else "postgresql",
        "send_seconds": send_seconds,
        "rate": referrals / send_seconds,
        "samples": samples,
        "half_mark": half["sent"],
        "growth_mb": growth,
        "worker_half_done": worker_half["sent"] - worker_half["queued"],
        "worker_done_at_end": last["sent"] - last["queued"],
        "restarted": pid_changed,
        "max_worker_rss_mb": worst,
        "max_worker_rss_at_full_mb": worst_at_full,
        "max_worker_growth_mb": worst_growth,
        "target_rss_mb": TARGET_RSS_MB,
        "growth_tolerance_mb": GROWTH_TOLERANCE_MB,
        "met_rss": max(worst, worst_at_full) < TARGET_RSS_MB,
        "met_growth": worst_growth <= GROWTH_TOLERANCE_MB and not pid_changed,
    }


def report(result: dict) -> None:
    samples = result["samples"]
    roles = list(samples[-1]["rss"])
    print(
        f"{result['referrals']} referrals from {result['clients']} clients to `serve "
        f"--workers {result['workers']}` on {result['database']}: sent in "
        f"{result['send_seconds']:.0f} s ({result['rate']:.0f}/s)"
    )
    print(
        f"{'sent':>9} {'t (s)':>6} {'queued':>7} "
        + " ".join(f"{r.replace('gunicorn ', 'gu. '):>18}" for r in roles)
        + "   (VmRSS, MB)"
    )
    for s in samples:
        cells = " ".join(f"{(s['rss'].get(r) or 0):18.1f}" for r in roles)
        print(f"{s['label']:>9} {s['seconds']:6.0f} {s['queued']:7d} {cells}")
    print(
        f"{'growth':>9} {'':6} {'':7} "
        + " ".join(f"{result['growth_mb'].get(r, 0):+18.1f}" for r in roles)
        + f"   (web: sent {result['half_mark']} -> {result['referrals']}; background worker: "
        f"~{result['worker_half_done']} -> ~{result['worker_done_at_end']} processed)"
    )
    if result["restarted"]:
        print(f"restarted between the marks (pid changed): {', '.join(result['restarted'])}")
    rss_verdict = "meets" if result["met_rss"] else "MISSES"
    growth_verdict = "meets" if result["met_growth"] else "MISSES"
    largest = max(result["max_worker_rss_mb"], result["max_worker_rss_at_full_mb"])
    print(
        f"largest worker RSS {largest:.1f} MB "
        f"({rss_verdict} the < {result['target_rss_mb']:.0f} MB target); largest worker growth "
        f"over the last half {result['max_worker_growth_mb']:+.1f} MB ({growth_verdict} "
        f"'no growth', tolerance {result['growth_tolerance_mb']:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true", help="SQLite file instead of PostgreSQL")
    parser.add_argument("--drain-seconds", type=float, default=600)
    args = parser.parse_args()
    report(
        run(
            args.referrals,
            args.clients,
            args.workers,
            args.sqlite,
            args.drain_seconds,
            verbose=True,
        )
    )


if __name__ == "__main__":
    main()
