"""The reads and writes every evaluation and booking runs use statements built once: building
a SELECT and its cache key on each call cost about 0.2 ms of CPU a statement (docs/scheduling.md,
"The jobs' own CPU"). On a real (SQLite) database, with statement building switched off."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select

from referral_service.adapters.db import (
    audit,
    local_schedule,
    outbox,
    referrals,
    repositories,
    resources,
)
from referral_service.adapters.db import subscriptions as subscription_rows
from referral_service.adapters.db.tables import jobs, metadata
from referral_service.domain.decision import Decision
from referral_service.domain.lifecycle import TaskState


def _built_per_call(*args: object, **kwargs: object) -> None:
    raise AssertionError("a statement built on each call")


def test_the_jobs_hot_statements_are_not_built_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    modules = (referrals, local_schedule, repositories, resources, subscription_rows, outbox, audit)
    for module in modules:
        for name in ("select", "update", "insert", "or_"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, _built_per_call)
    decision = Decision("r1", "eligible", "chronic-migraine", "routine", "standard-infusion")
    with engine.begin() as conn:
        assert referrals.get_referral(conn, "r1") is None
        assert referrals.get_referral(conn, "r1", for_update=True) is None
        assert referrals.get_referral_head(conn, "r1", for_update=True) is None
        assert referrals.get_referral_with_task(conn, "r1") is None
        assert referrals.get_head_with_task(conn, "r1", for_update=True) is None
        assert referrals.get_task_for_referral(conn, "r1") is None
        assert referrals.get_task(conn, "t1") is None
        referrals.save_task(conn, "t1", TaskState("ready", "booked"), {}, 2, datetime.now(UTC))
        referrals.record_decision(conn, "r1", decision)
        assert local_schedule.series_rows(conn, "r1") == []
        assert resources.about_patient(conn, "clinic-a", "Patient/p1") == []
        assert resources.about_patient(conn, "clinic-a", "ServiceRequest/r1") == []
        assert subscription_rows.Subscriptions(conn).following("clinic-a", "r1") == []
        assert repositories.Identifiers(conn).systems_of("r1") == []
        referrals.add_event(conn, "r1", "evaluated", datetime.now(UTC), decision="eligible")
        audit.add(
            conn, audit.AuditRow("a1", datetime.now(UTC), "E", "evaluate", "0", "w", *[None] * 3)
        )
        for key in ("book:r1:v1", "book:r1:v1", None):  # the second one is skipped
            outbox.enqueue(conn, "book", now=datetime.now(UTC), max_attempts=3, dedupe_key=key)
        queued = conn.execute(select(jobs.c.dedupe_key).order_by(jobs.c.id)).scalars().all()
        assert queued == ["book:r1:v1", None]
        job = outbox.Job(1, "book", "r1", {}, 1, 3)
        assert outbox.complete(conn, job, worker_id="w", now=datetime.now(UTC)) is False  # pending
        claimed = dict(status="running", attempts=1, locked_by="w")
        conn.execute(jobs.update().where(jobs.c.id == 1).values(**claimed))
        assert outbox.complete(conn, job, worker_id="w", now=datetime.now(UTC)) is True
        assert conn.execute(select(jobs.c.status).where(jobs.c.id == 1)).scalar() == "done"
