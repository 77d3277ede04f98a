"""Fixtures for booking integration tests: databases with the schema, referral rows.

`sekmet_server` comes from the tests.support.sekmet plugin (tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, create_engine, insert, text

from referral_service.adapters.db.engine import make_engine
from referral_service.adapters.db.tables import metadata, referrals
from referral_service.domain.decision import Decision
from referral_service.services.booking.schedule import BookingRequest

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def add_referrals(engine: Engine, ids: list[str], received_at: datetime) -> None:
    """Appointments reference referrals (foreign key): give them minimal rows."""
    rows = [
        {
            "id": rid,
            "sender": "clinic-a",
            "version_id": 1,
            "status": "active",
            "intent": "order",
            "source": "test",
            "resource": {},
            "supporting": {},
            "received_at": received_at,
            "last_updated": received_at,
        }
        for rid in ids
    ]
    with engine.begin() as conn:
        conn.execute(insert(referrals), rows)


def booking_request(
    referral_id: str,
    received_at: datetime,
    *,
    priority: str = "routine",
    protocol: str = "standard-infusion",
    earliest_start: datetime | None = None,
) -> BookingRequest:
    decision = Decision(
        referral=referral_id,
        decision="eligible",
        category="chronic-migraine",
        priority=priority,
        protocol=protocol,
        earliest_start=earliest_start,
    )
    return BookingRequest(
        referral_id=referral_id,
        sender="clinic-a",
        patient_ref=f"Patient/{referral_id}-patient",
        service_request_ref=f"http://127.0.0.1:8080/fhir/ServiceRequest/{referral_id}",
        decision=decision,
        received_at=received_at,
    )


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'referrals.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A fresh schema per test (search_path), dropped afterwards."""
    admin = create_engine(PG_URL)
    schema = f"booking_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server on this machine: say so rather than fail obscurely
        admin.dispose()
        pytest.skip(f"PostgreSQL unavailable: {type(exc).__name__}")
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    metadata.create_all(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def booking_db(request: pytest.FixtureRequest) -> Engine:
    """Tables from metadata.create_all (not migrations): booking's SQL against the schema."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def referral_ids() -> Callable[[int], list[str]]:
    prefix = uuid.uuid4().hex[:8]
    return lambda n: [f"ref-{prefix}-{i:02d}" for i in range(n)]
