"""kill -9 a worker in the middle of a job: after a restart the job completes, once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time

from sqlalchemy import select

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.tables import appointments, jobs, referral_events
from referral_service.config import Settings
from referral_service.runtime import Runtime
from referral_service.services.intake import referrals as intake
from tests.support.referrals import eligible_referral
from tests.support.service import EXECUTABLE


class BlackHoleEhr:
    """An 'EHR' that accepts connections and never answers: the worker hangs mid-job."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/fhir"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _worker(env: dict[str, str], cwd) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [EXECUTABLE, "worker"],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_worker_loses_nothing_and_the_job_runs_once(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    runtime = Runtime(Settings(database_url=url), engine)
    referral = eligible_referral("crash-1")
    # A reference not in hand: evaluation reads it from the EHR, which never answers.
    referral["reasonReference"] = [{"reference": "Condition/on-the-ehr"}]
    result = intake.receive_referral(
        runtime,
        sender="local",
        document=referral,
        now=runtime.now(),
        options=intake.IntakeOptions(),
    )

    ehr = BlackHoleEhr()
    base_env = {
        "REFERRAL_DATABASE_URL": url,
        "REFERRAL_JOB_LEASE_SECONDS": "2",
        "REFERRAL_LOG_LEVEL": "WARNING",
    }
    stuck = _worker(
        {**base_env, "REFERRAL_EHR_BASE_URL": ehr.url, "REFERRAL_EHR_TIMEOUT_SECONDS": "60"},
        tmp_path,
    )
    try:
        assert ehr.connected.wait(30), "the worker never reached the EHR"
        os.kill(stuck.pid, signal.SIGKILL)
        stuck.wait(10)
    finally:
        ehr.close()
    with engine.connect() as conn:
        job = conn.execute(select(jobs).where(jobs.c.kind == "evaluate")).mappings().one()
    assert job["status"] == "running" and job["attempts"] == 1  # claimed, never finished

    # Restarted without the EHR (local scheduling): the lease expires, the job is taken over.
    restarted = _worker(base_env, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                booked = (
                    conn.execute(
                        select(appointments).where(appointments.c.referral_id == result.referral_id)
                    )
                    .mappings()
                    .all()
                )
            if booked:
                break
            time.sleep(0.3)
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0  # SIGTERM: finishes the current job, exits cleanly
    with engine.connect() as conn:
        evaluate = conn.execute(select(jobs).where(jobs.c.kind == "evaluate")).mappings().one()
        appointment_rows = conn.execute(select(appointments)).mappings().all()
        events = conn.execute(select(referral_events.c.kind, referral_events.c.detail)).all()
    assert evaluate["status"] == "done" and evaluate["attempts"] == 2
    assert len(appointment_rows) == 1 and appointment_rows[0]["status"] == "booked"
    evaluated = [detail for kind, detail in events if kind == "evaluated"]
    assert len(evaluated) == 1, json.dumps(evaluated)
