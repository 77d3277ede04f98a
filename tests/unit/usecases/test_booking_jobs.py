"""The book and cancel jobs and giving up, specified on the fakes of the unit of work and the
schedule (tests/support/fakes.py): what each writes, and that it commits once, with the job's
completion, or not at all."""

from __future__ import annotations

from datetime import timedelta

import pytest

from referral_service.adapters.db.outbox import Job
from referral_service.adapters.ehr.errors import EhrUnavailable
from referral_service.domain import lifecycle
from referral_service.domain.decision import Decision
from referral_service.services.booking.book import book_job, cancel_job, gave_up
from referral_service.services.jobs import RetryLater
from tests.support.fakes import NOW, FakeRuntime, FakeSchedule

ELIGIBLE = Decision(
    referral="r1",
    decision="eligible",
    category="chronic-migraine",
    priority="routine",
    protocol="standard-infusion",
)


def _job(kind: str, referral_id: str = "r1", attempts: int = 1) -> Job:
    return Job(1, kind, referral_id, {}, attempts, 3)


class Finishing:
    """The worker's `finish`: records in which unit of work the job was completed."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, str]] = []

    def __call__(self, uow: object, result: str) -> None:
        self.calls.append((uow, result))


def test_a_free_chair_books_the_referral_and_completes_the_job_in_the_same_commit() -> None:
    start = NOW + timedelta(days=3)
    runtime = FakeRuntime(FakeSchedule([("chair-1", start, start + timedelta(hours=2))]))
    runtime.add_referral("r1", lifecycle.ELIGIBLE, ELIGIBLE)
    finish = Finishing()

    assert book_job(runtime, _job("book"), finish) == "booked"

    store = runtime.store
    assert store.tasks["r1"].state == lifecycle.BOOKED
    assert store.tasks["r1"].resource["output"][0]["valueReference"] == {
        "reference": "Appointment/appt-r1"
    }
    assert store.appointments["r1"]["chair_id"] == "chair-1"
    assert store.event_kinds("r1") == ["booked"]
    assert [result for _, result in finish.calls] == ["booked"]
    assert store.commits == 1  # appointment, Task, history and completion together


def test_no_free_chair_is_a_no_slot_task_with_a_note_for_staff() -> None:
    runtime = FakeRuntime(FakeSchedule([]))
    runtime.add_referral("r1", lifecycle.ELIGIBLE, ELIGIBLE)

    assert book_job(runtime, _job("book"), Finishing()) == "no-slot"

    task = runtime.store.tasks["r1"]
    assert task.state == lifecycle.NO_SLOT
    assert "no infusion chair is free" in task.resource["note"][-1]["text"]
    assert runtime.store.appointments == {}


def test_an_unreachable_ehr_retries_later_and_says_so_on_the_task() -> None:
    schedule = FakeSchedule()
    schedule.unavailable = EhrUnavailable("connect timeout")
    runtime = FakeRuntime(schedule)
    runtime.add_referral("r1", lifecycle.ELIGIBLE, ELIGIBLE)
    finish = Finishing()

    with pytest.raises(RetryLater):
        book_job(runtime, _job("book"), finish)

    assert runtime.store.tasks["r1"].state.business_status == "ehr-retrying"
    assert runtime.store.event_kinds("r1") == ["booking-attempt-failed"]
    assert finish.calls == []  # the worker retries the job; it is not complete


@pytest.mark.parametrize("state", [lifecycle.BOOKED, lifecycle.CANCELLED, lifecycle.NEEDS_REVIEW])
def test_a_referral_not_waiting_for_a_booking_is_left_alone(state) -> None:
    runtime = FakeRuntime(FakeSchedule([("chair-1", NOW, NOW + timedelta(hours=2))]))
    runtime.add_referral("r1", state, ELIGIBLE)

    assert book_job(runtime, _job("book"), Finishing()).startswith("skipped")
    assert runtime.store.commits == 0
    assert runtime.store.appointments == {}


def test_cancelling_frees_the_schedule_and_closes_the_task_in_one_commit() -> None:
    start = NOW + timedelta(days=3)
    runtime = FakeRuntime(FakeSchedule([("chair-1", start, start + timedelta(hours=2))]))
    runtime.add_referral("r1", lifecycle.ELIGIBLE, ELIGIBLE)
    book_job(runtime, _job("book"), Finishing())
    commits = runtime.store.commits
    finish = Finishing()

    assert cancel_job(runtime, _job("cancel"), finish) == "cancelled"

    store = runtime.store
    assert runtime.schedule.released == ["r1"]
    assert store.appointments["r1"]["status"] == "cancelled"
    assert store.tasks["r1"].state == lifecycle.CANCELLED
    assert [result for _, result in finish.calls] == ["cancelled"]
    assert store.commits == commits + 1


def test_giving_up_fails_the_task_in_the_transaction_that_fails_the_job() -> None:
    runtime = FakeRuntime()
    runtime.add_referral("r1", lifecycle.ELIGIBLE, ELIGIBLE)

    with runtime.unit_of_work() as uow:
        gave_up(uow, _job("book", attempts=3), "EhrUnavailable: down", NOW)

    task = runtime.store.tasks["r1"]
    assert task.state == lifecycle.EHR_FAILED
    assert task.resource["note"][-1]["text"] == "book failed after 3 attempts"
    assert runtime.store.event_kinds("r1") == ["gave-up"]
    assert runtime.store.commits == 1


def test_a_use_case_that_raises_leaves_nothing_behind() -> None:
    runtime = FakeRuntime()
    runtime.add_referral("r1", lifecycle.ELIGIBLE, ELIGIBLE)

    with pytest.raises(RuntimeError), runtime.unit_of_work() as uow:
        gave_up(uow, _job("book", attempts=3), "boom", NOW)
        raise RuntimeError("after the Task was written")

    assert runtime.store.tasks["r1"].state == lifecycle.ELIGIBLE
    assert runtime.store.event_kinds("r1") == []
    assert (runtime.store.commits, runtime.store.rollbacks) == (0, 1)
