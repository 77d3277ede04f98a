"""Subscriptions R4 Backport (hl7.fhir.uv.subscriptions-backport) at the FHIR edge: the one
topic this service offers, a referrer's Subscription read into what it asks for, and the shapes
it is sent (handshake, heartbeat, event notification: history Bundles whose first entry is the
SubscriptionStatus Parameters) and answered ($status)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from referral_service.config import LOOPBACK_HOSTS, fhir_base
from referral_service.fhir.instant import format_instant
from referral_service.fhir.outcome import FhirError, Issue, Unprocessable

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
TOPIC = "https://referral-service.dev/SubscriptionTopic/referral-task-changed"
SUBSCRIPTION_PROFILE = BACKPORT + "backport-subscription"
STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"
FILTER = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT = BACKPORT + "backport-heartbeat-period"
TIMEOUT = BACKPORT + "backport-timeout"
MAX_COUNT = BACKPORT + "backport-max-count"
TOPIC_CANONICAL = BACKPORT + "capabilitystatement-subscriptiontopic-canonical"
SERVER_CAPABILITY = (
    "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/"
    "backport-subscription-server-r4"
)
CONTENTS = ("empty", "id-only", "full-resource")
_FILTER_SHAPE = re.compile(r"^Task\?focus=ServiceRequest/([A-Za-z0-9\-.]{1,64})$")
MOST_ENDPOINT_CHARACTERS = 2048  # the column's width
DEFAULT_TIMEOUT_SECONDS = 10
MOST_TIMEOUT_SECONDS = 60
LEAST_HEARTBEAT_SECONDS = 1
MOST_HEARTBEAT_SECONDS = 86_400


@dataclass(frozen=True)
class SubscriptionRequest:
    """What a referrer's Subscription asks for."""

    endpoint: str
    content: str
    referral_id: str | None  # from the filter; None = every referral of the sender
    heartbeat_seconds: int | None
    timeout_seconds: int
    headers: tuple[str, ...]
    reason: str


def _object(value: Any) -> dict[str, Any]:
    """An element that should be an object, or an empty one (its checks then refuse it)."""
    return value if isinstance(value, dict) else {}


def _extensions(element: Any, url: str) -> list[dict[str, Any]]:
    found = _object(element).get("extension")
    if not isinstance(found, list):
        return []
    return [e for e in found if isinstance(e, dict) and e.get("url") == url]


def _extension(element: Any, url: str) -> dict[str, Any] | None:
    found = _extensions(element, url)
    return found[0] if found else None


def _refuse(code: str, text: str, where: str) -> FhirError:
    return Unprocessable(Issue(code, text, (where,)))


def endpoint_allowed(endpoint: str, allowed: tuple[str, ...]) -> bool:
    """https anywhere; plain http only on loopback or under an allow-listed prefix."""
    if len(endpoint) > MOST_ENDPOINT_CHARACTERS:
        raise _refuse(
            "too-long",
            f"channel.endpoint is over {MOST_ENDPOINT_CHARACTERS} characters",
            "Subscription.channel.endpoint",
        )
    parts = urlsplit(endpoint)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").lower()
    loopback = host in LOOPBACK_HOSTS
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if loopback:
        return True
    try:
        base = fhir_base(endpoint)
    except ValueError:  # a query or credentials: never on the allow-list
        return False
    return any(base == prefix or base.startswith(prefix + "/") for prefix in allowed)


def _unsigned(channel: dict[str, Any], url: str, name: str, least: int, most: int) -> int | None:
    extension = _extension(channel, url)
    if extension is None:
        return None
    value = extension.get("valueUnsignedInt", extension.get("valuePositiveInt"))
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise _refuse(
            "value", f"{name} must be a whole number of seconds from {least} to {most}", url
        )
    return value


def read_subscription(
    resource: dict[str, Any], allowed: tuple[str, ...] | None
) -> SubscriptionRequest:
    """A Subscription as POSTed, checked against what this server offers (422 naming the
    element otherwise). `allowed`: the plain-http allow-list; None skips the endpoint rule
    (a stored Subscription read back: the setting may have changed since)."""
    if resource.get("resourceType") != "Subscription":
        raise FhirError.single("invalid", "the body is not a Subscription", "resourceType")
    if resource.get("status") not in ("requested", "active"):
        raise _refuse("value", "a new Subscription's status is requested", "Subscription.status")
    if resource.get("criteria") != TOPIC:
        raise _refuse(
            "not-supported",
            f"the only topic here is {TOPIC} (a referral's Task changed)",
            "Subscription.criteria",
        )
    referral_id = None
    filters = _extensions(resource.get("_criteria"), FILTER)
    if len(filters) > 1:
        raise _refuse("not-supported", "at most one filter", "Subscription.criteria")
    if filters:
        match = _FILTER_SHAPE.match(str(filters[0].get("valueString", "")))
        if match is None:
            raise _refuse(
                "not-supported",
                "the only filter is Task?focus=ServiceRequest/<id> (one referral)",
                "Subscription.criteria",
            )
        referral_id = match.group(1)
    reason = resource.get("reason", "Follow referrals")
    if not isinstance(reason, str) or not reason.strip():
        raise _refuse("value", "reason is a non-empty string", "Subscription.reason")
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        raise _refuse("required", "channel is required", "Subscription.channel")
    if channel.get("type") != "rest-hook":
        raise _refuse("not-supported", "the only channel is rest-hook", "Subscription.channel.type")
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str):
        raise _refuse("value", "channel.endpoint is required", "Subscription.channel")
    if len(endpoint) > MOST_ENDPOINT_CHARACTERS:
        raise _refuse(
            "too-long",
            f"channel.endpoint is over {MOST_ENDPOINT_CHARACTERS} characters",
            "Subscription.channel.endpoint",
        )
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(
            "value", "channel.endpoint must be an absolute http(s) URL", "Subscription.channel"
        )
    if parts.username or parts.password or parts.fragment:
        raise _refuse(
            "value", "channel.endpoint carries no credentials or fragment", "Subscription.channel"
        )
    if allowed is not None and not endpoint_allowed(endpoint, allowed):
        raise _refuse(
            "security",
            "channel.endpoint must be https (plain http only on loopback or an allow-listed "
            "endpoint, REFERRAL_SUBSCRIPTION_ALLOWED_ENDPOINTS)",
            "Subscription.channel.endpoint",
        )
    payload = channel.get("payload", "application/fhir+json")
    if payload not in ("application/fhir+json", "application/json"):
        raise _refuse(
            "not-supported", "payloads are application/fhir+json", "Subscription.channel.payload"
        )
    content_extension = _extension(channel.get("_payload"), PAYLOAD_CONTENT)
    content = "id-only" if content_extension is None else content_extension.get("valueCode")
    if content not in CONTENTS:
        raise _refuse("value", f"payload content is one of {', '.join(CONTENTS)}", PAYLOAD_CONTENT)
    headers = channel.get("header") or []
    if not isinstance(headers, list) or not all(
        isinstance(h, str) and ":" in h and "\n" not in h and "\r" not in h for h in headers
    ):
        raise _refuse("value", "each channel.header is 'Name: value'", "Subscription.channel")
    heartbeat = _unsigned(
        channel, HEARTBEAT, "heartbeat period", LEAST_HEARTBEAT_SECONDS, MOST_HEARTBEAT_SECONDS
    )
    timeout = _unsigned(channel, TIMEOUT, "timeout", 1, MOST_TIMEOUT_SECONDS)
    return SubscriptionRequest(
        endpoint=endpoint,
        content=content,
        referral_id=referral_id,
        heartbeat_seconds=heartbeat or None,
        timeout_seconds=timeout or DEFAULT_TIMEOUT_SECONDS,
        headers=tuple(headers),
        reason=reason,
    )


def subscription_resource(
    subscription_id: str,
    asked: SubscriptionRequest,
    *,
    status: str,
    error: str | None,
    updated: datetime,
) -> dict[str, Any]:
    """The Subscription as this server holds it."""
    channel: dict[str, Any] = {
        "extension": [{"url": TIMEOUT, "valueUnsignedInt": asked.timeout_seconds}],
        "type": "rest-hook",
        "endpoint": asked.endpoint,
        "payload": "application/fhir+json",
        "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": asked.content}]},
    }
    if asked.heartbeat_seconds:
        channel["extension"].insert(
            0, {"url": HEARTBEAT, "valueUnsignedInt": asked.heartbeat_seconds}
        )
    if asked.headers:
        channel["header"] = list(asked.headers)
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "id": subscription_id,
        "meta": {"profile": [SUBSCRIPTION_PROFILE], "lastUpdated": format_instant(updated)},
        "status": status,
        "reason": asked.reason,
        "criteria": TOPIC,
        "channel": channel,
    }
    if asked.referral_id is not None:
        resource["_criteria"] = {
            "extension": [
                {"url": FILTER, "valueString": f"Task?focus=ServiceRequest/{asked.referral_id}"}
            ]
        }
    if error:
        resource["error"] = error
    return resource


def asked_of(resource: dict[str, Any]) -> SubscriptionRequest:
    """A stored Subscription read back (it was checked when accepted)."""
    return read_subscription({**resource, "status": "requested"}, allowed=None)


@dataclass(frozen=True)
class Event:
    number: int
    at: datetime
    task_id: str
    task: dict[str, Any] | None  # for full-resource


def status_parameters(
    subscription_url: str,
    *,
    status: str,
    kind: str,
    events_since_start: int,
    events: tuple[Event, ...] = (),
    base: str = "",
    content: str = "id-only",
    error: str | None = None,
) -> dict[str, Any]:
    """SubscriptionStatus (backport-subscription-status-r4): `kind` handshake | heartbeat |
    event-notification | query-status."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": subscription_url}},
        {"name": "topic", "valueCanonical": TOPIC},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": format_instant(event.at)},
        ]
        if content != "empty":
            parts.append(
                {"name": "focus", "valueReference": {"reference": f"{base}/Task/{event.task_id}"}}
            )
        parameters.append({"name": "notification-event", "part": parts})
    if error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": error}})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }


def notification_bundle(
    status: dict[str, Any],
    subscription_url: str,
    now: datetime,
    *,
    events: tuple[Event, ...] = (),
    base: str = "",
    content: str = "id-only",
) -> dict[str, Any]:
    """A notification: a history Bundle, the SubscriptionStatus first, then each event's focus
    (its reference for id-only, the Task as it was for full-resource, nothing for empty)."""
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{status['id']}",
            "resource": status,
            "request": {"method": "GET", "url": f"{subscription_url}/$status"},
            "response": {"status": "200"},
        }
    ]
    if content != "empty":
        for event in events:
            entry: dict[str, Any] = {
                "fullUrl": f"{base}/Task/{event.task_id}",
                "request": {"method": "PUT", "url": f"Task/{event.task_id}"},
                "response": {"status": "200"},
            }
            if content == "full-resource" and event.task is not None:
                entry["resource"] = event.task
            entries.append(entry)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": format_instant(now),
        "entry": entries,
    }


def status_bundle(statuses: list[dict[str, Any]], self_url: str) -> dict[str, Any]:
    """`$status`'s answer: a searchset of SubscriptionStatus Parameters."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(statuses),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {"fullUrl": f"urn:uuid:{s['id']}", "resource": s, "search": {"mode": "match"}}
            for s in statuses
        ],
    }


def capability_entry() -> dict[str, Any]:
    """The Subscription resource in the CapabilityStatement, with the topic it offers."""
    return {
        "type": "Subscription",
        "extension": [{"url": TOPIC_CANONICAL, "valueCanonical": TOPIC}],
        "supportedProfile": [SUBSCRIPTION_PROFILE],
        "interaction": [{"code": c} for c in ("create", "read", "update", "delete", "search-type")],
        "operation": [
            {
                "name": "status",
                "definition": "http://hl7.org/fhir/uv/subscriptions-backport/"
                "OperationDefinition/backport-subscription-status",
            }
        ],
        "documentation": "Topic-based (Subscriptions R4 Backport), rest-hook only; topic "
        f"{TOPIC}: a referral's Task changed. Filter Task?focus=ServiceRequest/<id> or none "
        "(every referral of the sender). Payload empty, id-only (default) or full-resource.",
    }
