"""The app with a webhook secret, and helpers to build and send notifications."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from referral_service.adapters.db.tables import jobs, referrals, webhook_events
from referral_service.config import Settings

SECRET = "s3cret-webhook-token"
AUTH = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/fhir+json"}
SUBSCRIPTION = "http://ehr.example/fhir/Subscription/sub-1"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, job_backoff_base_seconds=0.0, webhook_secret=SECRET)


def ehr_order(order_id: str | None = None, version: int = 1, **changes: Any) -> dict[str, Any]:
    """An eligible referral as the EHR holds it: an id, a version, a business identifier."""
    from tests.support.referrals import eligible_referral

    order_id = order_id or uuid.uuid4().hex[:12]
    resource = eligible_referral(f"ehr-{order_id}")
    resource["id"] = order_id
    resource["meta"] = {"versionId": str(version), "lastUpdated": f"2026-11-23T09:00:0{version}Z"}
    resource.update(changes)
    return resource


def notification(
    kind: str = "event-notification",
    number: int | None = 1,
    focus: str | None = None,
    resources: list[dict[str, Any]] | None = None,
    since: int | None = None,
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": SUBSCRIPTION}},
        {"name": "topic", "valueCanonical": "http://ehr.example/topic/servicerequest-new"},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(since or number or 0)},
    ]
    if number is not None and kind == "event-notification":
        parts = [{"name": "event-number", "valueString": str(number)}]
        if focus:
            parts.append({"name": "focus", "valueReference": {"reference": focus}})
        parameters.append({"name": "notification-event", "part": parts})
    entries = [
        {
            "fullUrl": "urn:uuid:1",
            "resource": {"resourceType": "Parameters", "parameter": parameters},
        }
    ]
    for resource in resources or []:
        entries.append(
            {
                "fullUrl": f"http://ehr.example/fhir/{resource['resourceType']}/{resource['id']}",
                "resource": copy.deepcopy(resource),
            }
        )
    return {"resourceType": "Bundle", "type": "history", "entry": entries}


def full_resource(order: dict[str, Any], number: int = 1) -> dict[str, Any]:
    return notification(number=number, focus=f"ServiceRequest/{order['id']}", resources=[order])


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            "events": conn.execute(select(func.count()).select_from(webhook_events)).scalar_one(),
            "jobs": conn.execute(select(func.count()).select_from(jobs)).scalar_one(),
            "referrals": conn.execute(select(func.count()).select_from(referrals)).scalar_one(),
        }
