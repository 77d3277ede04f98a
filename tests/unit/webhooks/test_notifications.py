"""Parsing Backport notification Bundles, EHR order identity and version order, the intake
filter: pure functions, no I/O."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from referral_service.fhir.notifications import (
    IntakeFilter,
    is_newer,
    parse_notification,
    split_reference,
    with_ehr_identifier,
)
from referral_service.fhir.outcome import Unreadable

EXAMPLES = Path(__file__).parents[2] / "data" / "backport"
ENCOUNTER = "https://example.org/fhir/Encounter/86009987-eabe-42bf-8c02-b112b18cb616"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("name", "kind", "content", "since"),
    [
        ("r4-notification-handshake", "handshake", "empty", 0),
        ("r4-notification-heartbeat", "heartbeat", "empty", 2),
        ("r4-notification-empty", "event-notification", "empty", 2),
        ("r4-notification-id-only", "event-notification", "id-only", 2),
        ("r4-notification-full-resource", "event-notification", "full-resource", 2),
        ("r4-notification-multi-resource", "event-notification", "full-resource", 2),
        ("r4-notification-error", "query-status", "empty", 3),
        ("r4b-notification-handshake", "handshake", "empty", 0),
        ("r4b-notification-id-only", "event-notification", "id-only", 2),
        ("r4b-notification-full-resource", "event-notification", "full-resource", 2),
    ],
)
def test_every_ig_example_parses(name: str, kind: str, content: str, since: int) -> None:
    notification = parse_notification(example(name))
    assert notification.kind == kind
    assert notification.content == content
    assert notification.events_since_start == since
    assert notification.subscription == "https://example.org/fhir/Subscription/admission"
    if kind == "event-notification":
        assert [e.number for e in notification.events] == [2]


def test_full_resource_carries_the_focus_and_its_context() -> None:
    notification = parse_notification(example("r4-notification-multi-resource"))
    assert notification.events[0].focus == ENCOUNTER
    assert [r["resourceType"] for r in notification.resources] == ["Encounter", "Patient"]
    assert notification.topic == "http://hl7.org/SubscriptionTopic/admission"


def test_the_same_notification_has_the_same_dedupe_key_and_another_event_another() -> None:
    first = parse_notification(example("r4-notification-id-only"))
    again = parse_notification(example("r4-notification-id-only"))
    later = example("r4-notification-id-only")
    later["entry"][0]["resource"]["parameter"][5]["part"][0]["valueString"] = "3"
    assert first.dedupe_key() == again.dedupe_key()
    assert parse_notification(later).dedupe_key() != first.dedupe_key()


def _broken(change) -> dict:  # type: ignore[no-untyped-def]
    body = copy.deepcopy(example("r4-notification-id-only"))
    change(body)
    return body


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"resourceType": "Parameters"},
        _broken(lambda b: b.update(type="transaction")),
        _broken(lambda b: b.update(entry=[])),
        _broken(lambda b: b["entry"][0].update(resource={"resourceType": "Patient"})),
        _broken(lambda b: b["entry"][0]["resource"].update(parameter="nope")),
        _broken(lambda b: b["entry"][0]["resource"]["parameter"][3].update(valueCode="party")),
        _broken(lambda b: b["entry"][0]["resource"]["parameter"].pop(0)),
        _broken(lambda b: b["entry"][0]["resource"]["parameter"][4].update(valueString="-1")),
        _broken(lambda b: b["entry"][0]["resource"]["parameter"][5]["part"].pop(0)),
        _broken(lambda b: b["entry"].append({"resource": {"id": "x"}})),
        _broken(lambda b: b["entry"][0]["resource"]["parameter"].pop(5)),
    ],
)
def test_malformed_notifications_are_unreadable(body: object) -> None:
    with pytest.raises(Unreadable) as caught:
        parse_notification(body)
    assert caught.value.status == 400
    assert caught.value.issues[0].code in {"structure", "required", "value"}


def test_references_split_into_type_and_id() -> None:
    assert split_reference("ServiceRequest/1") == ("ServiceRequest", "1")
    assert split_reference("http://ehr/fhir/ServiceRequest/a/_history/3") == ("ServiceRequest", "a")
    assert split_reference("#patient") is None
    assert split_reference("urn:uuid:123") is None
    assert split_reference("nothing") is None


def test_ehr_identifier_is_added_once() -> None:
    order = {"resourceType": "ServiceRequest", "id": "42", "identifier": []}
    once = with_ehr_identifier(order, "http://ehr/fhir/")
    twice = with_ehr_identifier(once, "http://ehr/fhir")
    assert twice["identifier"] == [{"system": "http://ehr/fhir/ServiceRequest", "value": "42"}]
    assert order["identifier"] == []  # the caller's copy is left alone


def test_versions_are_ordered_by_version_id_then_last_updated() -> None:
    assert is_newer({"versionId": "2"}, None)
    assert is_newer({"versionId": "10"}, {"versionId": "9"})
    assert not is_newer({"versionId": "9"}, {"versionId": "10"})
    assert not is_newer({"versionId": "3"}, {"versionId": "3"})
    old, new = "2026-11-25T10:00:00Z", "2026-11-25T10:00:01+00:00"
    assert is_newer({"lastUpdated": new}, {"lastUpdated": old})
    assert not is_newer({"lastUpdated": old}, {"lastUpdated": new})


def test_intake_filter_takes_only_orders_for_this_clinic() -> None:
    order = {
        "performer": [{"reference": "http://ehr/fhir/Organization/neuro"}],
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "x"}]},
    }
    assert IntakeFilter().accepts(order)
    assert IntakeFilter(performers=("Organization/neuro",)).accepts(order)
    assert not IntakeFilter(performers=("Organization/cardio",)).accepts(order)
    assert IntakeFilter(categories=("http://snomed.info/sct|3457005",)).accepts(order)
    assert not IntakeFilter(categories=("3457005",), codes=("y",)).accepts(order)
    assert not IntakeFilter(codes=("x",)).accepts({"resourceType": "ServiceRequest"})
