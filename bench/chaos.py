"""Chaos on loopback: two workers killed mid-booking, the EHR stopped for a while (issue 18).

    .venv/bin/python bench/chaos.py [--referrals 150] [--outage-seconds 60] [--chairs 6]
                                    [--days 15] [--settle-seconds 300]

Starts SEKMET (no auth) in a temp dir and seeds chairs and Slots, a fresh PostgreSQL schema,
the API (`referral-service serve --no-worker`) and two `referral-service worker` processes,
everything on 127.0.0.1. The referrals (one in ten a red flag) arrive in three waves:
1. a third: each worker is killed with SIGKILL while it runs a `book` job, then restarted;
2. a third while the EHR is stopped for --outage-seconds (decision latency measured here);
   (after --warm-up-seconds for the restarted workers to start);
3. the rest once the EHR is back; then it waits (at most --settle-seconds) for the queue to
   drain.
Prints referrals accepted, booked, redirected, stuck (not in a final state), appointments per
referral on the EHR, double-booked Slots, leaked holds (busy Slots held for an Appointment that
does not list them), and decision latency p50/p95 for the referrals received during the outage
(and, to compare, for the other two waves).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import database  # noqa: E402
from referral_service.adapters.db.engine import make_engine  # noqa: E402
from referral_service.adapters.db.tables import jobs, referral_events, referrals  # noqa: E402
from referral_service.adapters.ehr.client import FhirClient  # noqa: E402
from referral_service.config import Settings  # noqa: E402
from referral_service.fhir import scheduling as fs  # noqa: E402
from tests.support.referrals import FHIR_JSON, ICD10, eligible_referral  # noqa: E402
from tests.support.sekmet import SekmetServer, start_sekmet  # noqa: E402
from tests.support.service import EXECUTABLE, serve  # noqa: E402

FINAL = {"booked", "emergency-redirect", "ineligible", "no-slot", "ehr-failed", "cancelled"}
LIVE = {"proposed", "pending", "booked", "arrived", "fulfilled", "checked-in", "waitlist"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def referral(n: int, tag: str) -> dict[str, Any]:
    resource = eligible_referral(f"chaos-{tag}-{n}")
    if n % 10 == 0:  # a red flag: thunderclap headache
        coding = {"system": ICD10, "code": "G44.53", "display": "Thunderclap headache"}
        resource["reasonCode"] = [{"coding": [coding]}]
    return resource


class Workers:
    """Two worker processes, each killable with SIGKILL and restartable."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.processes: list[subprocess.Popen[bytes]] = [self._spawn(i) for i in range(2)]

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"worker-{index}.log").open("ab")
        return subprocess.Popen(
            [EXECUTABLE, "worker"], env=self.env, cwd=self.workdir, stdout=log, stderr=log
        )

    def kill_mid_booking(self, index: int, engine: Engine, within: float = 60) -> bool:
        """SIGKILL worker `index` while it holds a running `book` job; then start a new one."""
        pid = self.processes[index].pid
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                running = conn.execute(
                    select(jobs.c.id).where(
                        jobs.c.kind == "book",
                        jobs.c.status == "running",
                        jobs.c.locked_by.like(f"%:{pid}:%"),
                    )
                ).first()
            if running is not None:
                os.kill(pid, signal.SIGKILL)
                self.processes[index].wait(10)
                self.processes[index] = self._spawn(index)
                return True
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def send(base: str, session: requests.Session, resources: list[dict[str, Any]]) -> list[str]:
    ids = []
    for resource in resources:
        response = session.post(
            f"{base}/fhir/ServiceRequest",
            json=resource,
            headers={"Content-Type": FHIR_JSON},
            timeout=30,
        )
        if response.status_code == 201:
            ids.append(response.json()["id"])
    return ids


def task_states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT referral_id, business_status FROM tasks")).all()
    return {str(r[0]): str(r[1]) for r in rows}


def settle(engine: Engine, ids: list[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = task_states(engine)
        if all(states.get(rid) in FINAL for rid in ids):
            return
        time.sleep(1)


def decision_latencies(engine: Engine, ids: list[str]) -> list[float]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(referrals.c.received_at, referral_events.c.at)
            .join(referral_events, referral_events.c.referral_id == referrals.c.id)
            .where(referral_events.c.kind == "evaluated", referrals.c.id.in_(ids))
        ).all()
    return [(_utc(at) - _utc(received)).total_seconds() for received, at in rows]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ehr_audit(ehr: SekmetServer, ids: list[str]) -> dict[str, Any]:
    """Appointments per referral, Slots booked twice, holds no live Appointment lists."""
    client = FhirClient.from_settings(Settings.from_env(ehr.env()))
    with client:
        per_referral: Counter[int] = Counter()
        live: dict[str, dict[str, Any]] = {}
        for rid in ids:
            found = client.search("Appointment", {"identifier": fs.appointment_token(rid)})
            ours = [a for a in found if a.get("status") in LIVE]
            per_referral[len(ours)] += 1
            live.update({str(a["id"]): a for a in ours})
        users: Counter[str] = Counter(
            sid
            for a in live.values()
            if a.get("status") == "booked"
            for sid in fs.appointment_slot_ids(a)
        )
        leaked = 0
        for slot in client.search("Slot", {"status": "busy", "_count": "500"}):
            holder = fs.slot_holder(slot) or ""
            appointment = live.get(holder.removeprefix("Appointment/"))
            if holder and (
                appointment is None or str(slot["id"]) not in fs.appointment_slot_ids(appointment)
            ):
                leaked += 1
    return {
        "appointments_per_referral": dict(sorted(per_referral.items())),
        "double_booked_slots": sum(1 for n in users.values() if n > 1),
        "leaked_holds": leaked,
    }


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[tuple[SekmetServer, str, Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    ehr = start_sekmet(workdir / "ehr", smart=False)
    try:
        with database("postgresql", workdir) as url:
            yield ehr, url, workdir
    finally:
        ehr.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    resources = [referral(n, tag) for n in range(1, args.referrals + 1)]
    waves = [resources[i::3] for i in range(3)]
    with stack(args) as (ehr, url, workdir):
        env = {
            **os.environ,
            **ehr.env(),
            "REFERRAL_DATABASE_URL": url,
            "REFERRAL_JOB_BACKOFF_SECONDS": "1",
            "REFERRAL_JOB_MAX_ATTEMPTS": "12",
            "REFERRAL_JOB_LEASE_SECONDS": str(args.lease_seconds),
            "REFERRAL_EHR_WRITEBACK": "off",
            "REFERRAL_LOG_LEVEL": "WARNING",
            "REFERRAL_RATE_LIMIT": "10000000/minute",
        }
        subprocess.run(
            [
                EXECUTABLE,
                "ehr",
                "seed-demo",
                "--days",
                str(args.days),
                "--chairs",
                str(args.chairs),
            ],
            env=env,
            cwd=workdir,
            check=True,
            capture_output=True,
            timeout=1800,
        )
        engine = make_engine(url)
        workers = Workers(env, workdir)
        accepted: list[str] = []
        try:
            with serve(workdir, env, "--no-worker") as service:
                session = requests.Session()
                kills = []
                # Wave 1: each worker killed mid-booking while referrals keep coming.
                sender = _sending(service.base_url, session, waves[0], accepted)
                for index in (0, 1):
                    kills.append(workers.kill_mid_booking(index, engine))
                sender.join()
                time.sleep(args.warm_up_seconds)  # the restarted workers start up
                # Wave 2: the EHR is down.
                ehr.stop()
                outage_started = time.monotonic()
                during = send(service.base_url, session, waves[1])
                accepted += during
                time.sleep(max(0.0, args.outage_seconds - (time.monotonic() - outage_started)))
                latencies = decision_latencies(engine, during)
                ehr.start()
                # Wave 3: the EHR is back.
                after = send(service.base_url, session, waves[2])
                accepted += after
                settle(engine, accepted, args.settle_seconds)
                before = [rid for rid in accepted if rid not in set(during) | set(after)]
                compare = {
                    "wave 1 (kills)": decision_latencies(engine, before),
                    "wave 3 (EHR back)": decision_latencies(engine, after),
                }
        finally:
            workers.stop()
        states = task_states(engine)
        engine.dispose()
        report = ehr_audit(ehr, accepted)
    counts = Counter(states.get(rid, "missing") for rid in accepted)
    return {
        "referrals_sent": args.referrals,
        "accepted": len(accepted),
        "booked": counts["booked"],
        "redirected": counts["emergency-redirect"],
        "stuck": sum(n for state, n in counts.items() if state not in FINAL),
        "final_states": dict(counts),
        "workers_killed_mid_booking": kills,
        **report,
        "outage_seconds": args.outage_seconds,
        "decisions_during_outage": len(latencies),
        "decision_latency_p50_s": statistics.median(latencies) if latencies else float("nan"),
        "decision_latency_p95_s": pct(latencies, 95),
        **{
            f"decision p50/p95 {wave}": f"{statistics.median(v):.3f} / {pct(v, 95):.3f} s"
            for wave, v in compare.items()
            if v
        },
    }


def _sending(
    base: str, session: requests.Session, wave: list[dict[str, Any]], accepted: list[str]
) -> threading.Thread:
    def go() -> None:
        for resource in wave:
            accepted.extend(send(base, session, [resource]))
            time.sleep(0.05)

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--referrals", type=int, default=150)
    parser.add_argument("--outage-seconds", type=float, default=60)
    parser.add_argument("--chairs", type=int, default=6)
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--lease-seconds", type=int, default=10)
    parser.add_argument("--settle-seconds", type=float, default=300)
    parser.add_argument("--warm-up-seconds", type=float, default=5)
    args = parser.parse_args()
    for key, value in run(args).items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:28} {shown}")


if __name__ == "__main__":
    main()
