"""The clinic's EHR booking lock on SQLite and PostgreSQL: one holder at a time per clinic, a
waiter gives up after its wait (the job retries later, the EHR never asked), a failure, a lost
connection or a holder stalled past its lease lets go of it, and other clinics are not held
up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text

from referral_service.adapters.db.booking_lock import (
    BookingBusy,
    BookingLockLost,
    ClinicBookingLock,
    clinic_key,
    still_held,
)
from referral_service.adapters.ehr.errors import EhrUnavailable, ScheduleBusy
from referral_service.adapters.ehr.serialized import SerializedEhrSchedule

# Wall-clock bounds, and PostgreSQL's advisory locks span the database, not a schema: this
# module's "ehr clinic-a" lock must not be held by its own tests on other xdist workers.
# `make test` runs it alone, after the parallel tests.
pytestmark = pytest.mark.serial


@contextmanager
def held_elsewhere(lock: ClinicBookingLock) -> Iterator[None]:
    """The lock held by another thread (as another worker would) for the block."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock():
            taken.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        done.set()
        holder.join(10)


def test_a_waiter_gives_up_after_its_wait_then_gets_the_lock(booking_db: Engine) -> None:
    lock = ClinicBookingLock(booking_db, "ehr clinic-a", wait_seconds=0.3)
    with held_elsewhere(lock):
        began = time.monotonic()
        with pytest.raises(BookingBusy), lock():
            pytest.fail("the lock was held by another worker")
        assert 0.25 <= time.monotonic() - began < 5
    with lock():  # released by its holder: free again
        pass


def test_another_clinic_is_not_held_up(booking_db: Engine) -> None:
    ours = ClinicBookingLock(booking_db, "ehr clinic-a", wait_seconds=0.3)
    theirs = ClinicBookingLock(booking_db, "ehr clinic-b", wait_seconds=0.3)
    assert clinic_key("ehr clinic-a") != clinic_key("ehr clinic-b")
    with held_elsewhere(ours), theirs():
        pass


def test_a_failure_inside_lets_go_of_the_lock(booking_db: Engine) -> None:
    lock = ClinicBookingLock(booking_db, "ehr clinic-a", wait_seconds=0.3)
    with pytest.raises(RuntimeError), lock():
        raise RuntimeError("the EHR answered nonsense")
    with held_elsewhere(lock):  # another worker takes it at once
        pass


class NeverAsked:
    def find(self, *args: object) -> None:
        raise AssertionError("the EHR was asked while another booking held the lock")


def test_a_busy_lock_is_a_retry_later_and_asks_nothing_of_the_ehr(booking_db: Engine) -> None:
    lock = ClinicBookingLock(booking_db, "ehr clinic-a", wait_seconds=0.2)
    schedule = SerializedEhrSchedule(NeverAsked(), lock)  # type: ignore[arg-type]
    with held_elsewhere(lock), pytest.raises(ScheduleBusy) as raised:
        schedule.find(None, None, None, None)  # type: ignore[arg-type]
    assert isinstance(raised.value, EhrUnavailable) and raised.value.retryable


@pytest.mark.postgres
def test_a_holder_whose_connection_dies_lets_go(postgres_engine: Engine) -> None:
    """A worker killed mid-booking: the server ends its session and with it the lock; nothing is
    left held in the pool either (the lock is transaction-level)."""
    lock = ClinicBookingLock(postgres_engine, "ehr clinic-a", wait_seconds=5)
    key = clinic_key("ehr clinic-a")
    with lock():
        with postgres_engine.connect() as admin:
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND classid = 170018 AND objid = :key AND objsubid = 2 AND granted"
                ),
                {"key": key & 0xFFFFFFFF},
            )
        began = time.monotonic()
        with held_elsewhere(lock):
            assert time.monotonic() - began < 5
    # the holder's release met a dead connection: logged, not raised; and the lock is free
    with held_elsewhere(lock):
        pass


@pytest.mark.postgres
def test_a_holder_silent_past_its_lease_loses_the_lock_and_books_nothing(
    postgres_engine: Engine,
) -> None:
    """A worker stalled past its job's lease (another worker has its job): the server takes
    the lock back, the taker gets it, and the stalled one is told before it books."""
    lock = ClinicBookingLock(postgres_engine, "ehr clinic-a", wait_seconds=5, hold_seconds=0.5)
    with pytest.raises(BookingLockLost), lock():
        still_held()  # fresh: held
        time.sleep(1.5)  # stalled, silent
        began = time.monotonic()
        with held_elsewhere(lock):  # the taker
            assert time.monotonic() - began < 5
        still_held()


def test_still_held_is_quiet_outside_a_postgresql_lock(booking_db: Engine) -> None:
    still_held()
    with ClinicBookingLock(booking_db, "ehr clinic-a", wait_seconds=1)():
        still_held()
