"""POST /webhooks/fhir: FHIR Subscription notifications from the clinic EHR.

Backport topic notifications (history Bundles), classic rest-hook pings (empty POST) and
resources delivered as `PUT /webhooks/fhir/{type}/{id}`. Authenticated with
REFERRAL_WEBHOOK_SECRET as a Bearer token; the event is recorded with its outbox job in one
transaction and answered 202 at once: every EHR read happens in the worker.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, request

from referral_service.api.fhir_io import fhir_response, runtime
from referral_service.fhir.notifications import parse_notification
from referral_service.fhir.outcome import Issue, Unreadable, information_outcome, operation_outcome
from referral_service.fhir.validation import check_content_type, decode_json_object
from referral_service.observability import metrics
from referral_service.services.ehr import webhooks
from referral_service.services.ehr.webhooks import Recorded

webhooks_bp = Blueprint("webhooks", __name__)
audit_log = logging.getLogger("referral_service.audit")


def _refusal() -> str | None:
    """Why this caller may not notify us, or None. The token is compared in constant time."""
    secret = runtime().settings.webhook_secret
    if not secret:
        return "webhooks disabled (no REFERRAL_WEBHOOK_SECRET)"
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "missing bearer token"
    if not hmac.compare_digest(token.strip().encode(), secret.encode()):
        return "wrong bearer token"
    return None


def _refused(reason: str) -> Response:
    # The one trace a refused notification leaves: no body read, nothing stored.
    audit_log.warning(
        "webhook refused",
        extra={
            "audit": "webhook-refused",
            "reason": reason,
            "source_ip": request.remote_addr,
            "method": request.method,
            "path": request.path,
        },
    )
    metrics.webhook_event("refused")
    issue = Issue("security", "the notification is not authenticated")
    response = fhir_response(operation_outcome([issue]), 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="webhooks"'
    return response


def _body() -> dict[str, Any] | None:
    """The JSON body, or None for an empty ping."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return None
    check_content_type(request.headers.get("Content-Type"))
    return decode_json_object(raw)


def _accepted(recorded: Recorded, kind: str) -> Response:
    metrics.webhook_event("duplicate" if recorded.duplicate else kind)
    text = "already recorded" if recorded.duplicate else "recorded; it will be processed"
    return fhir_response(information_outcome(f"notification {text}"), 202)


@webhooks_bp.post("/webhooks/fhir")
def notification() -> Response:
    reason = _refusal()
    if reason:
        return _refused(reason)
    service = runtime()
    body = _body()
    if body is None:
        return _accepted(webhooks.record_ping(service, service.now(), service.settings), "ping")
    if body.get("resourceType") == "ServiceRequest":  # rest-hook posting the resource itself
        return _resource(body, None)
    parsed = parse_notification(body)
    recorded = webhooks.record_notification(
        service, parsed, _stored_body(body, parsed.content), service.now(), service.settings
    )
    return _accepted(recorded, parsed.kind)


@webhooks_bp.route("/webhooks/fhir/<resource_type>/<resource_id>", methods=["PUT", "POST"])
def delivered_resource(resource_type: str, resource_id: str) -> Response:
    reason = _refusal()
    if reason:
        return _refused(reason)
    body = _body()
    if body is None or body.get("resourceType") != resource_type:
        raise Unreadable.single("structure", f"the body must be the {resource_type} of the URL")
    return _resource(body, resource_id)


def _resource(body: dict[str, Any], url_id: str | None) -> Response:
    if not isinstance(body.get("id"), str) or (url_id is not None and body["id"] != url_id):
        raise Unreadable.single("value", "the resource id must match the URL", "id")
    if body["resourceType"] != "ServiceRequest":
        metrics.webhook_event("ignored")
        return fhir_response(information_outcome("not a referral; acknowledged and ignored"), 202)
    service = runtime()
    return _accepted(
        webhooks.record_resource(service, body, service.now(), service.settings), "resource"
    )


def _stored_body(body: dict[str, Any], content: str) -> dict[str, Any]:
    # id-only and empty notifications carry no clinical content worth keeping beyond the status.
    if content == "full-resource":
        return body
    return {**body, "entry": body["entry"][:1]}
