"""Local scheduling against real databases (SQLite file, PostgreSQL): no double booking."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from referral_service.adapters.db.tables import appointments, chair_claims
from referral_service.config import Settings
from referral_service.domain.scheduling.clinic import clinic_from_dict
from referral_service.runtime import book_referral, cancel_booking

from .conftest import add_referrals, booking_request

NOW = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday
# Three chairs, each open 09:00-11:00 every day: exactly one 2-hour infusion per chair-day.
CLINIC = clinic_from_dict(
    {
        "time_zone": "UTC",
        "chairs": [{"id": f"c{i}", "name": f"Chair {i}"} for i in range(1, 4)],
        "opening_hours": {
            day: {"open": "09:00", "close": "11:00"}
            for day in (
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            )
        },
        "window_days": {"stat": 1, "asap": 1, "urgent": 3, "routine": 14},
    }
)
CAPACITY = 3 * 3  # urgent: 3 days x 3 chairs
SETTINGS = Settings()


def book(engine: Engine, referral_id: str):
    request = booking_request(referral_id, NOW, priority="urgent")
    return book_referral(
        request, clinic=CLINIC, engine=engine, ehr=None, settings=SETTINGS, now=NOW
    )


def book_concurrently(engine: Engine, ids: list[str], threads: int = 2) -> dict[str, object]:
    pending = list(ids)
    lock = threading.Lock()
    results: dict[str, object] = {}

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                rid = pending.pop(0)
            try:
                results[rid] = book(engine, rid)
            except Exception as exc:  # recorded, so the test fails with the reason
                results[rid] = exc

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    return results


def test_two_threads_book_exactly_the_capacity_without_overlap(
    booking_db: Engine, referral_ids
) -> None:
    ids = referral_ids(CAPACITY + 6)
    add_referrals(booking_db, ids, NOW)
    results = book_concurrently(booking_db, ids)
    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert not errors, errors
    statuses = Counter(r.status for r in results.values())  # type: ignore[attr-defined]
    assert statuses == {"booked": CAPACITY, "no-slot": 6}
    with booking_db.connect() as conn:
        rows = conn.execute(select(appointments)).mappings().all()
        claims = conn.execute(select(func.count()).select_from(chair_claims)).scalar_one()
    assert len(rows) == CAPACITY and claims == CAPACITY * 8
    by_chair: dict[str, list[tuple[datetime, datetime]]] = {}
    for row in rows:
        by_chair.setdefault(row["chair_id"], []).append((row["start"], row["end"]))
    for spans in by_chair.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    assert all(
        row["start"].hour == 9 and row["end"] - row["start"] == timedelta(hours=2) for row in rows
    )
    assert {row["resource"]["status"] for row in rows} == {"booked"}


def test_rebooking_returns_the_same_appointment_and_cancel_frees_the_chair(
    booking_db: Engine, referral_ids
) -> None:
    first, second = referral_ids(2)
    add_referrals(booking_db, [first, second], NOW)
    booked = book(booking_db, first)
    assert booked.booked and book(booking_db, first) == booked
    assert cancel_booking(first, engine=booking_db, ehr=None, now=NOW)
    assert cancel_booking(first, engine=booking_db, ehr=None, now=NOW)  # idempotent
    with booking_db.connect() as conn:
        row = (
            conn.execute(select(appointments).where(appointments.c.referral_id == first))
            .mappings()
            .one()
        )
        assert conn.execute(select(func.count()).select_from(chair_claims)).scalar_one() == 0
    assert row["status"] == "cancelled" and row["resource"]["status"] == "cancelled"
    assert row["version_id"] == 2
    # The freed chair-time is the earliest again, so the next referral gets exactly it.
    other = book(booking_db, second)
    assert (other.chair_id, other.start) == (booked.chair_id, booked.start)
    assert cancel_booking("never-booked", engine=booking_db, ehr=None, now=NOW) is False


def test_a_full_clinic_gives_no_slot(sqlite_engine: Engine, referral_ids) -> None:
    ids = referral_ids(CAPACITY + 1)
    add_referrals(sqlite_engine, ids, NOW)
    outcomes = [book(sqlite_engine, rid) for rid in ids]
    assert [o.status for o in outcomes].count("booked") == CAPACITY
    assert outcomes[-1].status == "no-slot"
    assert [o.chair_id for o in outcomes[:3]] == ["c1", "c2", "c3"]  # load spread across chairs


@pytest.mark.parametrize("protocol", [None, "reiki"])
def test_a_decision_without_a_known_protocol_is_not_bookable(
    sqlite_engine: Engine, protocol
) -> None:
    from referral_service.services.booking.schedule import NotBookable

    request = booking_request("r", NOW, protocol=protocol)
    with pytest.raises(NotBookable):
        book_referral(
            request, clinic=CLINIC, engine=sqlite_engine, ehr=None, settings=SETTINGS, now=NOW
        )
