"""`referral-service ehr subscribe`: this service's webhook as a Subscription on the EHR.

Topic-based (Subscriptions Backport) when the EHR's CapabilityStatement offers a ServiceRequest
topic, classic R4 rest-hook otherwise; the shared secret travels in channel.header. Found again
by its endpoint, so running the command twice changes nothing, and a changed secret, content or
topic updates the one Subscription (with If-Match) instead of adding another.
"""

from __future__ import annotations

from typing import Any

from referral_service.adapters.ehr.headers import etag
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies
from referral_service.services.ehr import reconciliation

BP = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_PROFILE = f"{BP}/backport-subscription"
TOPIC_CANONICAL_EXT = f"{BP}/capabilitystatement-subscriptiontopic-canonical"
CONTENT_EXT = f"{BP}/backport-payload-content"
HEARTBEAT_EXT = f"{BP}/backport-heartbeat-period"
HEARTBEAT_SECONDS = 120  # a missed event shows as a gap within two minutes at worst
REASON = "Headache infusion referrals for referral-service"
CLASSIC_CRITERIA = "ServiceRequest?intent=order,original-order,reflex-order,filler-order"
FHIR_JSON = "application/fhir+json"


class SubscriptionError(ValueError):
    """The subscription cannot be made as configured (no secret, no endpoint...)."""


def offered_topics(capabilities: dict[str, Any]) -> list[str]:
    """Topic canonicals the EHR's CapabilityStatement advertises on its Subscription resource."""
    topics = []
    for rest in capabilities.get("rest") or []:
        for resource in rest.get("resource") or []:
            if resource.get("type") != "Subscription":
                continue
            for extension in resource.get("extension") or []:
                if extension.get("url") == TOPIC_CANONICAL_EXT:
                    topics.append(extension.get("valueCanonical") or extension.get("valueUri"))
    return [t for t in topics if isinstance(t, str) and t]


def choose_topic(topics: list[str], configured: str | None) -> str | None:
    """The configured topic if offered, else one about new ServiceRequests, else None."""
    if configured:
        return configured if configured in topics else None
    about_orders = [t for t in topics if "servicerequest" in t.lower()]
    preferred = [t for t in about_orders if t.lower().rstrip("/").endswith("new")]
    candidates = preferred or about_orders
    return candidates[0] if candidates else None


def desired_subscription(settings: Any, endpoint: str, topic: str | None) -> dict[str, Any]:
    if not settings.webhook_secret:
        raise SubscriptionError("REFERRAL_WEBHOOK_SECRET is not set: the webhook would refuse it")
    channel: dict[str, Any] = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "header": [f"Authorization: Bearer {settings.webhook_secret}"],
    }
    subscription: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": REASON,
        "channel": channel,
    }
    if topic is None:
        subscription["criteria"] = CLASSIC_CRITERIA
        if settings.webhook_content != "empty":
            channel["payload"] = FHIR_JSON  # delivered as PUT {endpoint}/ServiceRequest/{id}
        return subscription
    subscription["meta"] = {"profile": [BACKPORT_PROFILE]}
    subscription["criteria"] = topic
    channel["payload"] = FHIR_JSON
    channel["_payload"] = {
        "extension": [{"url": CONTENT_EXT, "valueCode": settings.webhook_content}]
    }
    channel["extension"] = [{"url": HEARTBEAT_EXT, "valueUnsignedInt": HEARTBEAT_SECONDS}]
    return subscription


def find_ours(ehr: Any, endpoint: str) -> dict[str, Any] | None:
    """Our Subscription on the EHR: the one whose channel posts to our endpoint."""
    for found in ehr.search("Subscription", {"url": endpoint}):
        if (found.get("channel") or {}).get("endpoint") == endpoint:
            return dict(found)
    return None


def _differs(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    keys = ("criteria", "channel", "reason")
    return any(current.get(key) != desired.get(key) for key in keys) or current.get("status") in (
        "error",
        "off",
    )


def subscribe(ehr: Any, settings: Any, endpoint: str) -> dict[str, Any]:
    """Create or update our Subscription; a report without the secret."""
    topic = choose_topic(offered_topics(ehr.capabilities()), settings.webhook_topic)
    if settings.webhook_topic and topic is None:
        raise SubscriptionError("the EHR does not offer the configured REFERRAL_WEBHOOK_TOPIC")
    desired = desired_subscription(settings, endpoint, topic)
    current = find_ours(ehr, endpoint)
    if current is None:
        written, action = ehr.create(desired), "created"
    elif _differs(current, desired):
        written = ehr.update({**desired, "id": current["id"]}, if_match=etag(current))
        action = "updated"
    else:
        written, action = current, "unchanged"
    return {**describe(written), "action": action}


def describe(subscription: dict[str, Any]) -> dict[str, Any]:
    """What an operator needs to see; never the channel headers (they hold the secret)."""
    backport = BACKPORT_PROFILE in ((subscription.get("meta") or {}).get("profile") or [])
    return {
        "subscription": f"Subscription/{subscription.get('id')}",
        "mode": "backport" if backport else "rest-hook",
        "criteria": subscription.get("criteria"),
        "endpoint": (subscription.get("channel") or {}).get("endpoint"),
        "status": subscription.get("status"),
        "error": subscription.get("error"),
    }


def subscription_status(ehr: Any, endpoint: str) -> dict[str, Any] | None:
    current = find_ours(ehr, endpoint)
    return None if current is None else describe(current)


def webhook_endpoint(settings: Any, given: str | None) -> str:
    if given:
        return given
    if not settings.public_url:
        raise SubscriptionError("set REFERRAL_PUBLIC_URL (or pass --endpoint) to name the webhook")
    return f"{settings.public_url.rstrip('/')}/webhooks/fhir"


def subscribe_service(runtime: Dependencies, endpoint: str) -> dict[str, Any]:
    """Subscribe, then start the reconciliation: its cursor at the subscription's start and the
    periodic sweep that catches what the EHR never sends."""
    report = subscribe(runtime.ehr_client, runtime.settings, endpoint)
    with runtime.unit_of_work() as uow:
        reconciliation.start_cursor(uow, runtime.now())
        jobs.reconcile_periodically(uow, runtime.now(), minutes=runtime.settings.reconcile_minutes)
    return report
