"""The pool does not pre-ping: a connection PostgreSQL dropped (a restart, a terminated backend)
is found by the intake's first statement and the intake runs once more on a fresh one, so the
restart costs no request."""

from __future__ import annotations

import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select, text

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.tables import audit_events, referrals
from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.service import serve


def _terminate_backends(postgres_url: str, application_name: str) -> int:
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": application_name},
        ).scalar()
    admin.dispose()
    return int(killed or 0)


def test_terminated_backends_between_two_referrals_cost_no_request(
    tmp_path: Path, postgres_url: str, fresh_postgres_url: str
) -> None:
    name = f"referral-restart-{uuid.uuid4().hex[:8]}"
    url = f"{fresh_postgres_url}&application_name={name}"
    engine = make_engine(fresh_postgres_url)  # the test's own: not among those terminated
    migrate.upgrade(engine)
    env = {
        "REFERRAL_DATABASE_URL": url,
        "REFERRAL_WEB_CONCURRENCY": "1",
        "REFERRAL_AUTO_MIGRATE": "0",
    }
    with serve(tmp_path, env) as service:
        first = requests.post(
            f"{service.base_url}/fhir/ServiceRequest",
            json=eligible_referral("restart-1"),
            headers={"Content-Type": FHIR_JSON},
            timeout=30,
        )
        assert first.status_code == 201, first.text
        assert _terminate_backends(postgres_url, name) >= 1
        second = requests.post(
            f"{service.base_url}/fhir/ServiceRequest",
            json=eligible_referral("restart-2"),
            headers={"Content-Type": FHIR_JSON},
            timeout=30,
        )
        assert second.status_code == 201, second.text
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(referrals)).scalar() == 2
        created = conn.execute(
            select(audit_events.c.entity).where(audit_events.c.subtype == "create")
        ).scalars()
        assert sorted(created) == sorted(
            f"ServiceRequest/{r.json()['id']}" for r in (first, second)
        )
    engine.dispose()
