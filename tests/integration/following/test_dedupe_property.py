"""At-least-once delivery: whatever the service repeats (a notification the receiver took but
did not acknowledge is sent again) and however the network reorders notifications, a receiver
that keeps each event once by its number ends with the same events: every Task change, once.

The receiver is the documented example (examples/subscription_receiver.py), its `take`."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.integration.following.conftest import Receiver, refer, run_for, subscription

_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "subscription_receiver.py"
_spec = importlib.util.spec_from_file_location("subscription_receiver", _EXAMPLE)
assert _spec is not None and _spec.loader is not None
receiver_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(receiver_example)


def _fold(bundles: list[dict[str, Any]]) -> dict[int, Any]:
    seen: dict[int, Any] = {}
    for bundle in bundles:
        receiver_example.take(bundle, seen)
    return seen


def _versions(seen: dict[int, Any]) -> list[int]:
    return [int(seen[n]["meta"]["versionId"]) for n in sorted(seen)]


def test_refused_acknowledgements_resend_and_the_receiver_ends_with_each_event_once(
    as_sender, receiver: Receiver, runtime, clock
) -> None:
    counter = itertools.count()

    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(answers=st.lists(st.sampled_from([200, 500, 503, 429]), max_size=6))
    @example(answers=[200, 503, 503])
    def check(answers: list[int]) -> None:
        # at most 3 refusals in all: no job spends its 4 attempts
        refusals = 0
        bounded = []
        for answer in answers:
            refusals += answer != 200
            bounded.append(answer if refusals <= 3 else 200)
        sender = as_sender(f"er-{next(counter)}")
        receiver.received.clear()
        created = sender(
            "POST", "/fhir/Subscription", subscription(receiver.url, content="full-resource")
        )
        assert created.status_code == 201
        run_for(runtime, clock, 0)  # the handshake, answered 200
        receiver.answers[:] = bounded
        referral = refer(sender, f"dedupe-{len(answers)}-{refusals}")
        run_for(runtime, clock, 600, steps=6)
        receiver.answers.clear()
        notes = receiver.of_type("event-notification")
        seen = _fold(notes)
        # each refused notification came again: the receiver saw it twice or more
        refused = sum(answer != 200 for answer in bounded[: len(receiver.received) - 1])
        assert len(notes) == len(seen) + refused
        task = sender("GET", f"/fhir/Task?focus=ServiceRequest/{referral}").get_json()
        last = int(task["entry"][0]["resource"]["meta"]["versionId"])
        assert sorted(seen) == list(range(1, last))  # events 1.. for Task versions 2..last
        assert _versions(seen) == list(range(2, last + 1))

    check()


def test_any_order_and_any_repeats_of_real_notifications_fold_to_the_same_events(
    as_sender, receiver: Receiver, runtime
) -> None:
    a = as_sender("er-a")
    created = a("POST", "/fhir/Subscription", subscription(receiver.url, content="full-resource"))
    assert created.status_code == 201
    run_for(runtime, None, 0, steps=0)
    for n in range(3):
        refer(a, f"dedupe-order-{n}")
    run_for(runtime, None, 0, steps=0)
    notes = receiver.of_type("event-notification")
    assert len(notes) >= 6
    in_order = _fold(notes)
    assert sorted(in_order) == list(range(1, len(notes) + 1))

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.integers(0, len(notes) - 1), max_size=3 * len(notes)).flatmap(
            lambda extra: st.permutations(list(range(len(notes))) + extra)
        )
    )
    def check(order: list[int]) -> None:
        assert _fold([notes[i] for i in order]) == in_order

    check()
