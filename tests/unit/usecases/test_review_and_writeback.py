"""Staff review and retry, and the EHR write-back a changed Task queues, specified on the fake
unit of work (tests/support/fakes.py)."""

from __future__ import annotations

import pytest

from referral_service.domain import lifecycle
from referral_service.domain.decision import Decision, Reason
from referral_service.domain.errors import NotKnown, WrongState
from referral_service.domain.review import reviewed
from referral_service.services.staff.review import retry, review
from referral_service.services.tasks import write_task
from tests.support.fakes import NOW, FakeRuntime

UNDECIDED = Decision(
    referral="r1",
    decision="needs-review",
    category="new-daily-persistent",
    priority="routine",
    protocol=None,
    reasons=(Reason("category", "met", "new daily persistent headache"),),
)


def test_approving_makes_the_referral_eligible_and_queues_its_booking() -> None:
    runtime = FakeRuntime()
    runtime.add_referral("r1", lifecycle.NEEDS_REVIEW, UNDECIDED)

    review(runtime, "r1", action="approve", note="seen the MRI", reviewer="dr-lee")

    store = runtime.store
    decision = store.referrals["r1"].decision
    assert decision is not None and decision.decision == "eligible"
    assert decision.protocol == "standard-infusion"  # the engine named none
    assert store.tasks["r1"].state == lifecycle.ELIGIBLE
    assert (
        store.tasks["r1"].resource["note"][-1]["text"] == "review: approved by dr-lee: seen the MRI"
    )
    assert [(j["kind"], j["dedupe_key"]) for j in store.jobs] == [("book", "book:r1:review")]
    assert store.commits == 1


def test_declining_rejects_the_referral_and_books_nothing() -> None:
    runtime = FakeRuntime()
    runtime.add_referral("r1", lifecycle.NEEDS_REVIEW, UNDECIDED)

    review(runtime, "r1", action="decline", note="", reviewer="dr-lee")

    assert runtime.store.tasks["r1"].state == lifecycle.INELIGIBLE
    assert runtime.store.jobs == []


def test_only_a_referral_waiting_for_review_can_be_reviewed() -> None:
    runtime = FakeRuntime()
    runtime.add_referral("r1", lifecycle.BOOKED, UNDECIDED)

    with pytest.raises(WrongState, match="booked, not waiting for review"):
        review(runtime, "r1", action="approve", note="", reviewer="dr-lee")
    with pytest.raises(NotKnown):
        review(runtime, "r2", action="approve", note="", reviewer="dr-lee")
    assert runtime.store.commits == 0


def test_only_a_failed_booking_is_retried() -> None:
    runtime = FakeRuntime()
    runtime.add_referral("r1", lifecycle.EHR_FAILED, UNDECIDED)
    runtime.add_referral("r2", lifecycle.ELIGIBLE, UNDECIDED)

    retry(runtime, "r1")
    with pytest.raises(WrongState):
        retry(runtime, "r2")

    assert runtime.store.tasks["r1"].state == lifecycle.ELIGIBLE
    assert runtime.store.job_kinds() == ["book"]


def test_the_review_is_the_decisions_last_reason() -> None:
    decided = reviewed(UNDECIDED, approve=False, reviewer="dr-lee", at=NOW)
    assert decided.decision == "ineligible" and decided.protocol is None
    assert decided.reasons[-1] == Reason(
        "staff-review", "not-met", f"declined by dr-lee at {NOW.isoformat()}"
    )
    assert decided.reasons[:-1] == UNDECIDED.reasons


def test_a_task_change_of_an_ehr_order_queues_its_write_back_in_the_same_commit() -> None:
    runtime = FakeRuntime()
    runtime.add_referral("from-ehr", lifecycle.RECEIVED, source="webhook")
    runtime.add_referral("direct", lifecycle.RECEIVED)
    runtime.add_referral("linked", lifecycle.RECEIVED)
    runtime.store.identifiers.append(
        ("clinic-ehr", "http://ehr.test/fhir/ServiceRequest", "sr-9", "linked")
    )

    with runtime.unit_of_work() as uow:
        for referral_id in ("from-ehr", "direct", "linked"):
            write_task(uow, referral_id, lifecycle.NEEDS_REVIEW, NOW)

    assert [(j["kind"], j["referral_id"], j["dedupe_key"]) for j in runtime.store.jobs] == [
        ("ehr-task-writeback", "from-ehr", "ehr-task-writeback:from-ehr:2"),
        ("ehr-task-writeback", "linked", "ehr-task-writeback:linked:2"),
    ]
    assert all(j["max_attempts"] == runtime.settings.job_max_attempts for j in runtime.store.jobs)
    assert runtime.store.commits == 1
