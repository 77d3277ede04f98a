"""Referrers' Subscriptions over real HTTP: a loopback receiver gets the handshake, then one
notification per Task change of the sender's own referrals, in order, numbered from 1; a
receiver that was down gets everything once back; a Subscription whose retry budget ran out is
`error` and recovered by a PUT."""

from __future__ import annotations

from referral_service.worker import Worker
from tests.integration.following.conftest import (
    TOPIC,
    Receiver,
    refer,
    run_for,
    status_of,
    subscription,
)


def _task(call, referral_id: str) -> dict:  # type: ignore[no-untyped-def]
    found = call("GET", f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    return found["entry"][0]["resource"]


def _subscribe(call, receiver: Receiver, runtime, **options) -> str:  # type: ignore[no-untyped-def]
    created = call("POST", "/fhir/Subscription", subscription(receiver.url, **options))
    assert created.status_code == 201, created.get_json()
    Worker(runtime).run_until_idle()  # the handshake
    return str(created.get_json()["id"])


def test_handshake_then_one_notification_per_task_change_in_order(
    as_sender, receiver: Receiver, runtime
) -> None:
    a, b = as_sender("er-a"), as_sender("er-b")
    created = a("POST", "/fhir/Subscription", subscription(receiver.url, content="full-resource"))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "requested"
    assert created.headers["Location"].endswith(f"/fhir/Subscription/{body['id']}")
    Worker(runtime).run_until_idle()
    assert [status_of(n)["type"]["valueCode"] for n in receiver.received] == ["handshake"]
    assert status_of(receiver.received[0])["status"]["valueCode"] == "requested"
    assert receiver.headers[0]["Authorization"] == "Bearer receiver-secret"
    assert a("GET", f"/fhir/Subscription/{body['id']}").get_json()["status"] == "active"

    mine = refer(a, "sub-a-1")
    theirs = refer(b, "sub-b-1")
    Worker(runtime).run_until_idle()
    notes = receiver.of_type("event-notification")
    task = _task(a, mine)
    assert task["businessStatus"]["coding"][0]["code"] == "booked"
    # every Task version after the first (written at intake) is one event, in order
    versions = [n["entry"][1]["resource"]["meta"]["versionId"] for n in notes]
    assert versions == [str(v) for v in range(2, int(task["meta"]["versionId"]) + 1)]
    assert len(versions) >= 2
    assert receiver.event_numbers() == list(range(1, len(notes) + 1))
    for number, note in enumerate(notes, start=1):
        status = status_of(note)
        assert status["topic"]["valueCanonical"] == TOPIC
        assert status["status"]["valueCode"] == "active"
        assert status["events-since-subscription-start"]["valueString"] == str(number)
        assert note["type"] == "history"
        assert note["entry"][1]["resource"]["focus"]["reference"].endswith(mine)
    assert all(theirs not in str(note) for note in receiver.received)


def test_a_filter_follows_one_referral_and_must_name_ones_own(
    as_sender, receiver: Receiver, runtime
) -> None:
    a, b = as_sender("er-a"), as_sender("er-b")
    followed, other = refer(a, "sub-f-1"), refer(a, "sub-f-2")
    theirs = refer(b, "sub-f-3")
    refused = a("POST", "/fhir/Subscription", subscription(receiver.url, referral_id=theirs))
    assert refused.status_code == 422
    assert refused.get_json()["issue"][0]["expression"] == ["Subscription.criteria"]
    _subscribe(a, receiver, runtime, referral_id=followed)
    Worker(runtime).run_until_idle()
    notes = receiver.of_type("event-notification")
    assert notes, receiver.received
    focus = {entry["fullUrl"] for note in notes for entry in note["entry"][1:]}
    task = _task(a, followed)
    assert {url.rsplit("/", 2)[-1] for url in focus} == {task["id"]}
    assert other not in str(notes) and theirs not in str(notes)


def test_id_only_and_full_resource_payloads(as_sender, receiver: Receiver, runtime) -> None:
    a = as_sender("er-a")
    _subscribe(a, receiver, runtime, content="id-only")
    full = Receiver()
    try:
        _subscribe(a, full, runtime, content="full-resource")
        referral = refer(a, "sub-p-1")
        Worker(runtime).run_until_idle()
        task = _task(a, referral)
        for bundle in receiver.of_type("event-notification"):
            (entry,) = bundle["entry"][1:]
            assert "resource" not in entry
            assert entry["fullUrl"].endswith(f"/fhir/Task/{task['id']}")
            assert entry["request"] == {"method": "PUT", "url": f"Task/{task['id']}"}
        last = full.of_type("event-notification")[-1]
        assert last["entry"][1]["resource"] == task
        assert len(full.of_type("event-notification")) == len(
            receiver.of_type("event-notification")
        )
    finally:
        full.down()


def test_a_receiver_that_was_down_gets_everything_in_order_once_back(
    as_sender, receiver: Receiver, runtime, clock
) -> None:
    a = as_sender("er-a")
    subscription_id = _subscribe(a, receiver, runtime)
    receiver.down()
    refer(a, "sub-d-1")
    refer(a, "sub-d-2")
    run_for(runtime, clock, 90, steps=3)  # two retries each, refused
    status = a("GET", f"/fhir/Subscription/{subscription_id}/$status").get_json()
    assert status_of(status)["status"]["valueCode"] == "active"
    waiting = int(status_of(status)["events-since-subscription-start"]["valueString"])
    assert waiting >= 4
    receiver.up()
    run_for(runtime, clock, 200, steps=4)
    assert receiver.event_numbers() == list(range(1, waiting + 1))


def test_after_its_retry_budget_a_subscription_is_error_and_a_put_recovers_it(
    as_sender, receiver: Receiver, runtime, clock
) -> None:
    a = as_sender("er-a")
    subscription_id = _subscribe(a, receiver, runtime)
    receiver.down()
    refer(a, "sub-e-1")
    run_for(runtime, clock, 600, steps=10)  # every attempt spent
    held = a("GET", f"/fhir/Subscription/{subscription_id}").get_json()
    assert held["status"] == "error"
    assert "delivery failed after 4 attempts" in held["error"]
    status = status_of(a("GET", f"/fhir/Subscription/{subscription_id}/$status").get_json())
    assert status["status"]["valueCode"] == "error"
    assert "delivery failed" in status["error"]["valueCodeableConcept"]["text"]
    refer(a, "sub-e-2")  # still recorded while in error
    Worker(runtime).run_until_idle()
    receiver.up()
    assert receiver.of_type("event-notification") == []  # the first handshake only
    receiver.received.clear()
    back = a("PUT", f"/fhir/Subscription/{subscription_id}", subscription(receiver.url))
    assert back.status_code == 200, back.get_json()
    assert back.get_json()["status"] == "requested"
    run_for(runtime, clock, 10)
    kinds = [status_of(n)["type"]["valueCode"] for n in receiver.received]
    assert kinds[0] == "handshake" and set(kinds[1:]) == {"event-notification"}
    total = int(
        status_of(a("GET", f"/fhir/Subscription/{subscription_id}/$status").get_json())[
            "events-since-subscription-start"
        ]["valueString"]
    )
    assert receiver.event_numbers() == list(range(1, total + 1))
    assert total >= 4
    assert a("GET", f"/fhir/Subscription/{subscription_id}").get_json()["status"] == "active"


def test_a_failed_handshake_leaves_the_subscription_in_error(
    as_sender, receiver: Receiver, runtime
) -> None:
    a = as_sender("er-a")
    receiver.answer = 404
    subscription_id = _subscribe(a, receiver, runtime)
    held = a("GET", f"/fhir/Subscription/{subscription_id}").get_json()
    assert held["status"] == "error" and "handshake failed: HTTP 404" in held["error"]


def test_heartbeats_when_asked_and_quiet(as_sender, receiver: Receiver, runtime, clock) -> None:
    a = as_sender("er-a")
    _subscribe(a, receiver, runtime, heartbeat=60)
    run_for(runtime, clock, 30)
    assert receiver.of_type("heartbeat") == []
    run_for(runtime, clock, 100, steps=2)
    beats = receiver.of_type("heartbeat")
    assert len(beats) >= 1
    assert status_of(beats[0])["events-since-subscription-start"]["valueString"] == "0"


def test_notifications_have_a_lane_of_their_own(as_sender, receiver: Receiver, runtime) -> None:
    """A slow or dead receiver never holds up the EHR lane, nor the EHR lane a notification."""
    from referral_service.services.jobs import JobKind
    from referral_service.worker_lanes import EHR_WORK, LANES, NOTIFICATIONS

    kinds = {kind.value for kind in JobKind if kind.value.startswith("subscription-")}
    assert set(NOTIFICATIONS.kinds) == kinds
    a = as_sender("er-a")
    a("POST", "/fhir/Subscription", subscription(receiver.url))
    assert Worker(runtime, lane=EHR_WORK).run_until_idle() == 0  # the handshake is not its
    assert Worker(runtime, lane=NOTIFICATIONS).run_until_idle() == 2  # handshake, then resume
    assert len(receiver.received) == 1
    assert len(LANES) == 3
