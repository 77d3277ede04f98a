"""The audit trail over HTTP: every FHIR, staff and webhook request recorded after it is answered,
and GET /fhir/AuditEvent (search by date, entity, agent) and /fhir/AuditEvent/{id} for staff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, g, request

from referral_service.adapters.db import search as search_sql
from referral_service.adapters.db.audit import AuditQuery
from referral_service.api.auth import Forbidden
from referral_service.api.fhir_io import check_accept, fhir_response, runtime
from referral_service.api.identity import sees_everything
from referral_service.api.search_params import read_search, search_bundle
from referral_service.config import Settings
from referral_service.fhir import search_parameters
from referral_service.services.staff import audit

log = logging.getLogger(__name__)

audit_bp = Blueprint("fhir_audit", __name__)

# Probes, scrapes, the CapabilityStatement and the API description say nothing about referrals;
# throttled requests are not recorded either, so a flood cannot flood the trail.
_UNAUDITED_PATHS = frozenset(
    {"/fhir/metadata", "/healthz", "/readyz", "/metrics", "/api/openapi.json"}
)


def audited_action(method: str, path: str, location: str | None) -> audit.AuditedAction | None:
    parts = [part for part in path.split("/") if part]
    if not parts or path in _UNAUDITED_PATHS:
        return None
    if parts[0] == "fhir":
        return audit.fhir_action(method, parts[1:], _created_entity(location))
    if parts[0] == "api":
        return audit.staff_action(method, parts[1:])
    if parts[0] == "webhooks" and method == "POST":
        return audit.AuditedAction("C", "notification", None)
    return None


def _created_entity(location: str | None) -> str | None:
    """`.../fhir/ServiceRequest/abc/_history/1` -> `ServiceRequest/abc`."""
    if not location or "/fhir/" not in location:
        return None
    parts = location.split("/fhir/", 1)[1].split("/")
    return f"{parts[0]}/{parts[1]}" if len(parts) >= 2 and parts[1] else None


def _agent(settings: Settings) -> str:
    sender = g.get("sender")
    if sender:
        return str(sender)
    return "local" if settings.auth == "none" else "anonymous"


def init_audit(app: Flask, settings: Settings) -> None:
    app.config.setdefault("CAPABILITY_EXTENSIONS", []).append(_advertise)

    @app.after_request
    def _record(response: Response) -> Response:
        if response.status_code == 429:
            return response
        if g.get("audit_recorded") and response.status_code < 300:
            return response  # written in the request's own transaction (creation_recorder)
        audited = audited_action(request.method, request.path, response.headers.get("Location"))
        if audited is None:
            return response
        try:
            with runtime().unit_of_work() as uow:
                audit.record(
                    uow,
                    audited,
                    recorded=runtime().now(),
                    outcome=audit.outcome_code(response.status_code),
                    agent=_agent(settings),
                    source_ip=(request.remote_addr or "")[:64] or None,
                )
        except Exception as exc:  # the answer is already decided; say the trail missed one
            log.error("audit record failed: %s", type(exc).__name__)
        return response


def creation_recorder() -> Callable[[Any, str], None]:
    """The audit record of a create, for the use case to write in its own transaction; call
    `recorded_in_transaction()` once that transaction has committed with it."""
    settings = runtime().settings
    agent = _agent(settings)
    source_ip = (request.remote_addr or "")[:64] or None

    def write(uow: Any, referral_id: str) -> None:
        audited = audit.AuditedAction("C", "create", f"ServiceRequest/{referral_id}")
        audit.record(
            uow,
            audited,
            recorded=runtime().now(),
            outcome=audit.outcome_code(201),
            agent=agent,
            source_ip=source_ip,
        )

    return write


def recorded_in_transaction() -> None:
    g.audit_recorded = True


def _advertise(resources: list[dict]) -> None:
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": search_parameters.capability_params(search_parameters.AUDIT_EVENT),
        }
    )


def _staff_only() -> None:
    # Auth already demands the staff scope here; this holds even if a route is mis-mapped.
    if not sees_everything():
        raise Forbidden.single("forbidden", "the audit trail is for staff only")


@audit_bp.get("/fhir/AuditEvent")
@audit_bp.post("/fhir/AuditEvent/_search")
def search_audit_events() -> Response:
    check_accept()
    _staff_only()
    criteria = read_search(search_parameters.AUDIT_EVENT)
    filters = search_sql.conditions(search_sql.AUDIT_EVENT, criteria, None, runtime().now())
    query = AuditQuery(tuple(filters), criteria.count, criteria.offset)
    events, total = audit.search_events(runtime(), query)
    return fhir_response(search_bundle("AuditEvent", events, total, criteria))


@audit_bp.get("/fhir/AuditEvent/<audit_id>")
def read_audit_event(audit_id: str) -> Response:
    check_accept()
    _staff_only()
    return fhir_response(audit.read_event(runtime(), audit_id))
