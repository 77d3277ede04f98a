"""Receiving a referral, specified on the fake unit of work: everything a 2xx promises is in
one commit, and the same business identifier again returns the referral it made."""

from __future__ import annotations

from referral_service.domain import lifecycle
from referral_service.services.intake.options import IntakeOptions
from referral_service.services.intake.referrals import receive_referral
from tests.support.fakes import NOW, FakeRuntime
from tests.support.referrals import eligible_referral


def test_a_new_referral_its_task_history_identifiers_and_evaluation_commit_together() -> None:
    runtime = FakeRuntime()
    document = eligible_referral("order-1")

    result = receive_referral(
        runtime, sender="clinic-a", document=document, now=NOW, options=IntakeOptions()
    )

    store = runtime.store
    assert result.created and result.version_id == 1
    assert store.referrals[result.referral_id].resource == document
    assert store.tasks[result.referral_id].state == lifecycle.RECEIVED
    assert store.event_kinds(result.referral_id) == ["received"]
    assert [(j["kind"], j["referral_id"]) for j in store.jobs] == [("evaluate", result.referral_id)]
    assert store.jobs[0]["max_attempts"] == runtime.settings.job_max_attempts
    assert {rid for *_, rid in store.identifiers} == {result.referral_id}
    assert store.commits == 1


def test_the_same_referral_again_returns_the_one_it_made_and_changes_nothing() -> None:
    runtime = FakeRuntime()
    first = receive_referral(
        runtime,
        sender="clinic-a",
        document=eligible_referral("order-1"),
        now=NOW,
        options=IntakeOptions(),
    )

    again = receive_referral(
        runtime,
        sender="clinic-a",
        document=eligible_referral("order-1"),
        now=NOW,
        options=IntakeOptions(),
    )

    assert (again.referral_id, again.created) == (first.referral_id, False)
    assert len(runtime.store.referrals) == 1 and len(runtime.store.jobs) == 1
    assert runtime.store.rollbacks == 1  # the second insert's unit rolled back whole
