"""Fuzzing every endpoint that reads a body with FHIR-shaped and junk input: never a 5xx, and a
refused request (4xx) leaves every clinical table exactly as it was. The slow test (CI runs it)
sends over 10,000 requests (1,250 per endpoint); the quick one runs with every suite."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from referral_service.adapters.db import tables
from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.runtime import Runtime
from referral_service.worker import Worker
from tests.security import fuzz_strategies as fs
from tests.security.conftest import CLINICAL_TABLES
from tests.support.referrals import FHIR_JSON, eligible_referral

WEBHOOK_SECRET = "fuzz-webhook-secret"
COUNTED = (*CLINICAL_TABLES, tables.webhook_events)
PUSHED = ("Patient", "Observation", "Condition", "MedicationStatement", "QuestionnaireResponse")


def row_counts(engine: Engine) -> tuple[int, ...]:
    """Every counted table in one round trip."""
    counts = [select(func.count()).select_from(t).scalar_subquery() for t in COUNTED]
    with engine.connect() as conn:
        return tuple(conn.execute(select(*counts)).one())


@dataclass
class Target:
    client: Any
    runtime: Runtime
    referral_id: str
    sent: int = 0
    counts: tuple[int, ...] = ()

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        response = self.client.open(path, method=method, data=body, headers=headers)
        self.sent += 1
        status = response.status_code
        assert status < 500, (method, path, status, response.get_data()[:300])
        after = row_counts(self.runtime.engine)
        if status >= 400:
            assert after == self.counts, (method, path, status)
        self.counts = after  # an accepted request may add rows; the next refusal compares here


def make_target(tmp_path: Path) -> Target:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'fuzz.db'}",
        rate_limit="1000000/minute",
        webhook_secret=WEBHOOK_SECRET,
        job_backoff_base_seconds=0.0,
    )
    runtime = Runtime(settings)
    client = create_app(runtime=runtime).test_client()
    created = client.post(
        "/fhir/ServiceRequest",
        json=eligible_referral("fuzz-base"),
        headers={"Content-Type": FHIR_JSON},
    )
    assert created.status_code == 201
    target = Target(client, runtime, created.get_json()["id"])
    target.counts = row_counts(runtime.engine)
    return target


def endpoints(target: Target) -> dict[str, tuple[str, Any, Any]]:
    """name -> (method, path strategy, body strategy)."""
    ids = st.sampled_from([target.referral_id]) | st.text(min_size=1, max_size=20).map(
        lambda text: quote(text, safe="")
    )
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    task["focus"] = {"reference": f"ServiceRequest/{target.referral_id}"}
    return {
        "create": ("POST", st.just("/fhir/ServiceRequest"), fs.body_for(fs.referral_bodies())),
        "update": (
            "PUT",
            ids.map("/fhir/ServiceRequest/{}".format),
            fs.body_for(fs.referral_bodies()),
        ),
        "bundle": ("POST", st.just("/fhir"), fs.body_for(fs.bundle_bodies())),
        "evaluate": (
            "POST",
            st.just("/fhir/ServiceRequest/$evaluate"),
            fs.body_for(fs.referral_bodies() | fs.bundle_bodies()),
        ),
        "review": (
            "POST",
            ids.map("/api/referrals/{}/review".format),
            fs.body_for(fs.review_bodies()),
        ),
        "push": (
            "POST",
            st.sampled_from([f"/fhir/{kind}" for kind in PUSHED]),
            fs.body_for(st.sampled_from(PUSHED).flatmap(fs.supporting_bodies)),
        ),
        "task": ("POST", st.just("/fhir/Task"), fs.body_for(fs.mutated(task))),
        "webhook": ("POST", st.just("/webhooks/fhir"), fs.body_for(fs.notification_bodies())),
    }


def fuzz(target: Target, name: str, examples: int) -> None:
    method, paths, bodies = endpoints(target)[name]
    extra = {"Authorization": f"Bearer {WEBHOOK_SECRET}"} if name == "webhook" else {}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(path=paths, body=bodies, headers=fs.request_headers())
    def one_request(path: str, body: bytes, headers: dict[str, str]) -> None:
        target.send(method, path, body, {**headers, **extra})

    one_request()


NAMES = ["create", "update", "bundle", "evaluate", "review", "push", "task", "webhook"]


def _no_failed_referral_jobs(target: Target) -> None:
    Worker(target.runtime).run_until_idle()
    jobs = tables.jobs
    with target.runtime.engine.connect() as conn:
        failed = conn.execute(
            select(jobs.c.kind, jobs.c.last_error).where(
                jobs.c.status == "failed", jobs.c.kind.in_(["evaluate", "book", "cancel"])
            )
        ).all()
    assert failed == []


@pytest.mark.parametrize("name", NAMES)
def test_quick_fuzz(tmp_path: Path, name: str) -> None:
    target = make_target(tmp_path)
    fuzz(target, name, examples=25)
    assert target.sent >= 25


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_ten_thousand_hostile_requests(tmp_path: Path, name: str) -> None:
    """1,250 requests per endpoint, 10,000 over the eight; one test per endpoint, so that
    `make test`'s workers share them (each on a database of its own, with the base referral)."""
    target = make_target(tmp_path)
    started = time.monotonic()
    fuzz(target, name, examples=1_250)
    print(f"{name}: {time.monotonic() - started:.1f} s")
    assert target.sent >= 1_250
    _no_failed_referral_jobs(target)
