"""Referrers' Subscriptions (Subscriptions R4 Backport server, rest-hook): create, read, search,
update (the way back from `error`), delete, `$status`. A sender sees only its own."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from referral_service.api.fhir_io import (
    check_accept,
    fhir_response,
    public_base,
    read_resource,
    runtime,
    written_response,
)
from referral_service.api.identity import current_sender, scope_sender
from referral_service.api.search_params import strict_handling
from referral_service.fhir import subscriptions as shapes
from referral_service.fhir.outcome import Unreadable
from referral_service.services.following import subscriptions

subscriptions_bp = Blueprint("fhir_subscriptions", __name__)


@subscriptions_bp.post("/fhir/Subscription")
def create_subscription() -> Response:
    check_accept()
    base = f"{public_base()}/fhir"
    stored = subscriptions.create(runtime(), current_sender(), read_resource(), base)
    location = f"{base}/Subscription/{stored['id']}"
    return written_response(stored, 201, {"Location": location})


@subscriptions_bp.put("/fhir/Subscription/<subscription_id>")
def update_subscription(subscription_id: str) -> Response:
    check_accept()
    stored = subscriptions.update(runtime(), current_sender(), subscription_id, read_resource())
    return written_response(stored, 200, {})


@subscriptions_bp.get("/fhir/Subscription/<subscription_id>")
def read_subscription(subscription_id: str) -> Response:
    check_accept()
    return fhir_response(subscriptions.read(runtime(), scope_sender(), subscription_id))


@subscriptions_bp.get("/fhir/Subscription")
@subscriptions_bp.post("/fhir/Subscription/_search")
def search_subscriptions() -> Response:
    """All of the caller's own Subscriptions: the search takes no parameters, so under
    `Prefer: handling=strict` any is refused, and leniently none is applied (the self link)."""
    check_accept()
    asked = sorted({*request.args, *request.form} - {"_format"})
    if asked and strict_handling():
        raise Unreadable.single(
            "not-supported",
            f"Subscription search takes no parameters; not applied: {', '.join(asked)}",
        )
    found = subscriptions.search(runtime(), scope_sender())
    base = f"{public_base()}/fhir"
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "link": [{"relation": "self", "url": f"{base}/Subscription"}],
    }
    if found:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/Subscription/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in found
        ]
    return fhir_response(bundle)


@subscriptions_bp.delete("/fhir/Subscription/<subscription_id>")
def delete_subscription(subscription_id: str) -> Response:
    subscriptions.delete(runtime(), current_sender(), subscription_id)
    return fhir_response(None, 204)


@subscriptions_bp.get("/fhir/Subscription/<subscription_id>/$status")
def subscription_status(subscription_id: str) -> Response:
    check_accept()
    status = subscriptions.status(runtime(), scope_sender(), subscription_id)
    return fhir_response(shapes.status_bundle([status], request.url))


def _advertise(entries: list[dict[str, Any]]) -> None:
    entries.append(shapes.capability_entry())


@subscriptions_bp.record_once
def _register_capability(state: BlueprintSetupState) -> None:
    state.app.config.setdefault("CAPABILITY_EXTENSIONS", []).append(_advertise)
    state.app.config.setdefault("CAPABILITY_INSTANTIATES", []).append(shapes.SERVER_CAPABILITY)
