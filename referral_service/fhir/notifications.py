"""Inbound EHR notifications on the FHIR edge: Subscriptions Backport notification Bundles
(R4 Parameters or R4B SubscriptionStatus), the clinic's intake filter, and what identifies and
orders an EHR ServiceRequest. Pure: no I/O."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from referral_service.fhir.outcome import Issue, Unreadable

Resource = dict[str, Any]
NOTIFICATION_TYPES = frozenset({"handshake", "heartbeat", "event-notification", "query-status"})
_EVENT_NAMES = ("notification-event", "notificationEvent")
_NUMBER_NAMES = ("event-number", "eventNumber")
_SINCE_NAMES = ("events-since-subscription-start", "eventsSinceSubscriptionStart")


@dataclass(frozen=True)
class NotificationEvent:
    number: int
    focus: str | None  # a reference as the EHR sent it, often absolute


@dataclass(frozen=True)
class Notification:
    kind: str  # handshake | heartbeat | event-notification | query-status
    subscription: str
    topic: str | None
    status: str | None
    events_since_start: int | None
    events: tuple[NotificationEvent, ...]
    resources: tuple[Resource, ...]  # the entries after the status (full-resource content)

    @property
    def content(self) -> str:
        """empty, id-only or full-resource, as the notification shows it."""
        if not any(event.focus for event in self.events):
            return "empty"
        return "full-resource" if self.resources else "id-only"

    def dedupe_key(self) -> str:
        """The same notification delivered again maps to the same key."""
        numbers = sorted(event.number for event in self.events)
        span = f"{numbers[0]}-{numbers[-1]}" if numbers else str(self.events_since_start)
        return f"{self.kind}:{digest(self.subscription)}:{span}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _fail(code: str, text: str, path: str) -> Unreadable:
    return Unreadable(Issue(code, text, (path,)))


def parse_notification(body: Any) -> Notification:
    """A Backport notification Bundle, or Unreadable (400) saying what is wrong with it."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise _fail("structure", "a notification must be a Bundle", "Bundle")
    if body.get("type") != "history":
        raise _fail("value", "a notification Bundle must be of type history", "Bundle.type")
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise _fail("required", "the status must be the first entry", "Bundle.entry")
    status = entries[0].get("resource")
    resources = tuple(_payload(entries[1:]))
    if isinstance(status, dict) and status.get("resourceType") == "Parameters":
        return _from_parameters(status, resources)
    if isinstance(status, dict) and status.get("resourceType") == "SubscriptionStatus":
        return _from_subscription_status(status, resources)
    raise _fail(
        "structure",
        "the first entry must be a Parameters (R4) or SubscriptionStatus (R4B)",
        "Bundle.entry[0].resource",
    )


def _payload(entries: list[Any]) -> list[Resource]:
    found = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise _fail("structure", "a Bundle entry must be an object", f"Bundle.entry[{index}]")
        resource = entry.get("resource")
        if resource is None:
            continue  # id-only payloads may list entries with a fullUrl alone
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            path = f"Bundle.entry[{index}].resource"
            raise _fail("structure", "an entry resource needs a resourceType", path)
        found.append(resource)
    return found


def _from_parameters(status: Resource, resources: tuple[Resource, ...]) -> Notification:
    params = status.get("parameter")
    if not isinstance(params, list):
        raise _fail("required", "the status Parameters has no parameter", "Parameters.parameter")
    named: dict[str, Any] = {}
    events = []
    for param in params:
        if not isinstance(param, dict):
            raise _fail("structure", "a parameter must be an object", "Parameters.parameter")
        name = param.get("name")
        if name in _EVENT_NAMES:
            events.append(_event_from_parts(param.get("part")))
        elif isinstance(name, str):
            named.setdefault(name, param)
    return _notification(
        kind=_value(named.get("type"), "valueCode"),
        subscription=_reference(named.get("subscription"), "valueReference"),
        topic=_value(named.get("topic"), "valueCanonical")
        or _value(named.get("topic"), "valueUri"),
        status=_value(named.get("status"), "valueCode"),
        since=_value(named.get(_SINCE_NAMES[0]) or named.get(_SINCE_NAMES[1]), "valueString"),
        events=events,
        resources=resources,
    )


def _event_from_parts(parts: Any) -> NotificationEvent:
    if not isinstance(parts, list):
        raise _fail("required", "a notification-event needs parts", "Parameters.parameter.part")
    number: Any = None
    focus = None
    for part in parts:
        if not isinstance(part, dict):
            continue
        name = part.get("name")
        if name in _NUMBER_NAMES:
            number = part.get("valueString", part.get("valueInteger"))
        elif name == "focus":
            focus = _reference(part, "valueReference")
    return NotificationEvent(_count(number, "event-number"), focus)


def _from_subscription_status(status: Resource, resources: tuple[Resource, ...]) -> Notification:
    events = []
    for event in status.get("notificationEvent") or []:
        if not isinstance(event, dict):
            raise _fail("structure", "a notificationEvent must be an object", "notificationEvent")
        focus = _reference({"f": event.get("focus")}, "f")
        events.append(NotificationEvent(_count(event.get("eventNumber"), "eventNumber"), focus))
    return _notification(
        kind=status.get("type"),
        subscription=_reference(status, "subscription"),
        topic=status.get("topic"),
        status=status.get("status"),
        since=status.get("eventsSinceSubscriptionStart"),
        events=events,
        resources=resources,
    )


def _notification(
    *,
    kind: Any,
    subscription: str | None,
    topic: Any,
    status: Any,
    since: Any,
    events: list[NotificationEvent],
    resources: tuple[Resource, ...],
) -> Notification:
    if kind not in NOTIFICATION_TYPES:
        raise _fail("value", f"type must be one of {sorted(NOTIFICATION_TYPES)}", "type")
    if not subscription:
        raise _fail("required", "the notification does not name its Subscription", "subscription")
    if kind == "event-notification" and not events:
        raise _fail("required", "an event-notification needs an event", "notification-event")
    return Notification(
        kind=kind,
        subscription=subscription,
        topic=topic if isinstance(topic, str) else None,
        status=status if isinstance(status, str) else None,
        events_since_start=None if since is None else _count(since, _SINCE_NAMES[0]),
        events=tuple(events),
        resources=resources,
    )


def _value(param: Any, key: str) -> Any:
    return param.get(key) if isinstance(param, dict) else None


def _reference(holder: Any, key: str) -> str | None:
    value = _value(holder, key)
    reference = value.get("reference") if isinstance(value, dict) else None
    return reference if isinstance(reference, str) and reference else None


def _count(value: Any, what: str) -> int:
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not text.isdigit() or len(text) > 12:
        raise _fail("value", f"{what} must be a non-negative whole number", what)
    return int(text)


# --- EHR references, identity and versions ---------------------------------------------------


def split_reference(reference: str | None) -> tuple[str, str] | None:
    """'ServiceRequest/1' or 'http://ehr/fhir/ServiceRequest/1/_history/2' -> (type, id)."""
    if not reference or reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("?")[0].split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or not parts[-1] or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


def ehr_identifier_system(ehr_base: str) -> str:
    """The system under which an EHR ServiceRequest's own id identifies its referral."""
    return f"{ehr_base.rstrip('/')}/ServiceRequest"


def with_ehr_identifier(service_request: Resource, ehr_base: str) -> Resource:
    """A copy carrying `<ehr base>/ServiceRequest|<id>` as one more business identifier, so
    the same EHR order keys the same referral whichever way it arrives."""
    document = copy.deepcopy(service_request)
    system = ehr_identifier_system(ehr_base)
    identifiers = [i for i in document.get("identifier") or [] if isinstance(i, dict)]
    if not any(i.get("system") == system for i in identifiers):
        identifiers.append({"system": system, "value": str(service_request["id"])})
    document["identifier"] = identifiers
    return document


def version_stamp(resource: Resource) -> dict[str, str]:
    meta: dict[str, Any] = resource["meta"] if isinstance(resource.get("meta"), dict) else {}
    stamp = {key: str(meta[key]) for key in ("versionId", "lastUpdated") if meta.get(key)}
    return stamp


def is_newer(incoming: dict[str, str], seen: dict[str, str] | None) -> bool:
    """Is this version of an EHR resource later than the one already taken? Version ids are
    compared as numbers when both are; otherwise lastUpdated decides; unknown counts as new."""
    if not seen:
        return True
    mine, theirs = incoming.get("versionId"), seen.get("versionId")
    if mine and theirs and mine.isdigit() and theirs.isdigit():
        return int(mine) > int(theirs)
    if mine and theirs and mine == theirs:
        return False
    new_time, old_time = incoming.get("lastUpdated"), seen.get("lastUpdated")
    if new_time and old_time:
        return _instant_key(new_time) > _instant_key(old_time)
    return incoming != seen


def _instant_key(value: str) -> str:
    # FHIR instants from one server share a format; normalising Z makes them sort as text.
    return value.replace("Z", "+00:00")


# --- the clinic's intake filter ----------------------------------------------------------------


@dataclass(frozen=True)
class IntakeFilter:
    """Which EHR orders are meant for this clinic. Each configured dimension must match (any of
    its values); nothing configured takes every order."""

    performers: tuple[str, ...] = ()  # "Organization/123"
    categories: tuple[str, ...] = ()  # "system|code" or "code"
    codes: tuple[str, ...] = ()

    def accepts(self, service_request: Resource) -> bool:
        if self.performers and not _performer_matches(service_request, self.performers):
            return False
        if self.categories and not _concepts_match(
            service_request.get("category"), self.categories
        ):
            return False
        return not self.codes or _concepts_match([service_request.get("code")], self.codes)


def _performer_matches(service_request: Resource, wanted: tuple[str, ...]) -> bool:
    for performer in service_request.get("performer") or []:
        parts = split_reference(performer.get("reference") if isinstance(performer, dict) else None)
        if parts and "/".join(parts) in wanted:
            return True
    return False


def _concepts_match(concepts: Any, wanted: tuple[str, ...]) -> bool:
    for concept in concepts or []:
        for coding in (concept or {}).get("coding") or [] if isinstance(concept, dict) else []:
            code = coding.get("code")
            if code and (code in wanted or f"{coding.get('system')}|{code}" in wanted):
                return True
    return False
