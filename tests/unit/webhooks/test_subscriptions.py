"""Which Subscription `ehr subscribe` asks the EHR for: pure choices, no EHR."""

from __future__ import annotations

import pytest

from referral_service.config import Settings
from referral_service.services.ehr.subscriptions import (
    BACKPORT_PROFILE,
    SubscriptionError,
    choose_topic,
    describe,
    desired_subscription,
    offered_topics,
    webhook_endpoint,
)

TOPIC_EXT = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical"
)
ENDPOINT = "https://referrals.example/webhooks/fhir"


def capabilities(*topics: str) -> dict:
    subscription = {
        "type": "Subscription",
        "extension": [{"url": TOPIC_EXT, "valueCanonical": t} for t in topics],
    }
    return {"resourceType": "CapabilityStatement", "rest": [{"resource": [subscription]}]}


def test_a_servicerequest_topic_is_chosen_when_offered() -> None:
    offered = offered_topics(
        capabilities("http://ehr/Topic/encounter-start", "http://ehr/Topic/servicerequest-new")
    )
    assert choose_topic(offered, None) == "http://ehr/Topic/servicerequest-new"
    assert choose_topic(offered, "http://ehr/Topic/encounter-start") == (
        "http://ehr/Topic/encounter-start"
    )
    assert choose_topic(offered, "http://ehr/Topic/unknown") is None
    assert choose_topic(offered_topics(capabilities()), None) is None


def test_backport_subscription_carries_topic_content_heartbeat_and_secret() -> None:
    settings = Settings(webhook_secret="s", webhook_content="full-resource")
    subscription = desired_subscription(settings, ENDPOINT, "http://ehr/Topic/servicerequest-new")
    assert subscription["meta"]["profile"] == [BACKPORT_PROFILE]
    assert subscription["criteria"] == "http://ehr/Topic/servicerequest-new"
    channel = subscription["channel"]
    assert channel["header"] == ["Authorization: Bearer s"]
    assert channel["_payload"]["extension"][0]["valueCode"] == "full-resource"
    assert channel["extension"][0]["valueUnsignedInt"] > 0


def test_without_a_topic_the_subscription_is_a_classic_rest_hook() -> None:
    subscription = desired_subscription(Settings(webhook_secret="s"), ENDPOINT, None)
    assert subscription["criteria"].startswith("ServiceRequest?")
    assert subscription["channel"]["payload"] == "application/fhir+json"
    assert "meta" not in subscription
    pings = desired_subscription(
        Settings(webhook_secret="s", webhook_content="empty"), ENDPOINT, None
    )
    assert "payload" not in pings["channel"]


def test_no_secret_no_subscription_and_the_report_never_shows_it() -> None:
    with pytest.raises(SubscriptionError):
        desired_subscription(Settings(), ENDPOINT, None)
    subscription = desired_subscription(Settings(webhook_secret="s3"), ENDPOINT, None)
    assert "s3" not in repr(describe({**subscription, "id": "1"}))


def test_the_endpoint_defaults_to_the_public_url() -> None:
    assert webhook_endpoint(Settings(public_url="https://r.example/"), None) == (
        "https://r.example/webhooks/fhir"
    )
    assert webhook_endpoint(Settings(), "http://x/hook") == "http://x/hook"
    with pytest.raises(SubscriptionError):
        webhook_endpoint(Settings(), None)
