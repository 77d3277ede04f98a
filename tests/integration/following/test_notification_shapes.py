"""What the service sends and answers is valid FHIR (fhir.resources' R4B models and the
service's own R4 checks) and has the IG's shape: the same parameters, in the same order, as the
Subscriptions Backport's own R4 example notifications (tests/data/backport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from referral_service.fhir.validation import validate_resource
from tests.integration.following.conftest import Receiver, refer, run_for, subscription

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "backport"


def _valid(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert validate_resource(resource) == [], resource["resourceType"]


def _names(bundle: dict[str, Any]) -> list[str]:
    return [p["name"] for p in bundle["entry"][0]["resource"]["parameter"]]


def _parts(bundle: dict[str, Any]) -> list[list[str]]:
    return [
        [part["name"] for part in p["part"]]
        for p in bundle["entry"][0]["resource"]["parameter"]
        if p["name"] == "notification-event"
    ]


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"r4-notification-{name}.json").read_text())


def test_notifications_status_and_subscription_are_valid_and_shaped_as_the_ig_says(
    as_sender, receiver: Receiver, runtime, clock
) -> None:
    a = as_sender("er-a")
    created = a("POST", "/fhir/Subscription", subscription(receiver.url, heartbeat=60))
    run_for(runtime, clock, 0)
    refer(a, "shape-1")
    run_for(runtime, clock, 90)
    kinds = {}
    for bundle in receiver.received:
        _valid(bundle)
        kind = bundle["entry"][0]["resource"]["parameter"][3]["valueCode"]
        kinds.setdefault(kind, bundle)
    assert set(kinds) == {"handshake", "event-notification", "heartbeat"}
    for kind, example in (("handshake", "handshake"), ("heartbeat", "heartbeat")):
        assert _names(kinds[kind]) == _names(_example(example))
        assert kinds[kind]["entry"][0]["request"]["url"].endswith("/$status")
    event, ig_event = kinds["event-notification"], _example("id-only")
    assert _names(event) == _names(ig_event)
    assert _parts(event) == _parts(ig_event)
    assert [set(e) for e in event["entry"]] == [set(e) for e in ig_event["entry"]] + [
        {"fullUrl", "request", "response"}
    ]
    assert event["meta"] == ig_event["meta"]
    subscription_id = created.get_json()["id"]
    _valid(a("GET", f"/fhir/Subscription/{subscription_id}").get_json())
    _valid(a("GET", f"/fhir/Subscription/{subscription_id}/$status").get_json())
    _valid(a("GET", "/fhir/Subscription").get_json())
    _valid(a("POST", "/fhir/Subscription", {"resourceType": "Subscription"}).get_json())
