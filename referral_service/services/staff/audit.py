"""The audit trail: what each request or worker job did to which referral, by whom, with what
outcome; recorded as codes and ids only (never clinical content) and read back as FHIR
AuditEvent resources (R4)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.adapters.db.audit import AuditQuery, AuditRow
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.domain.errors import NotKnown
from referral_service.fhir.instant import format_instant
from referral_service.services.dependencies import Dependencies

WORKER_AGENT = "referral-service-worker"
REST_SUBTYPES = frozenset(
    {
        "read",
        "vread",
        "history-instance",
        "update",
        "create",
        "search-type",
        "transaction",
        "batch",
        "operation",
    }
)
REST_SUBTYPE_SYSTEM = "http://hl7.org/fhir/restful-interaction"
SERVICE_SUBTYPE_SYSTEM = "https://referral-service.dev/audit-subtype"
CLIENT_ID_SYSTEM = "https://referral-service.dev/client-id"
# A FHIR id; anything else in a path (hostile or mistyped) is not copied into the trail.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


@dataclass(frozen=True)
class AuditedAction:
    action: str  # C R U D E
    subtype: str
    entity: str | None


def outcome_code(status: int) -> str:
    """AuditEvent.outcome: 0 success, 4 minor failure (the client's), 8 serious (ours)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _entity(resource_type: str, resource_id: str | None = None) -> str | None:
    if not _RESOURCE_TYPE.fullmatch(resource_type):
        return None
    if resource_id is None:
        return resource_type
    return f"{resource_type}/{resource_id}" if _FHIR_ID.fullmatch(resource_id) else resource_type


def fhir_action(method: str, parts: list[str], created: str | None) -> AuditedAction | None:
    """A /fhir request as an audited action; `parts` are the path segments after `fhir`."""
    if not parts:
        return AuditedAction("E", "transaction", None) if method == "POST" else None
    kind, rest = parts[0], parts[1:]
    if method == "GET":
        if not rest:
            return AuditedAction("E", "search-type", _entity(kind))
        if rest[-1:] == ["_history"]:
            return AuditedAction("R", "history-instance", _entity(kind, rest[0]))
        subtype = "vread" if "_history" in rest else "read"
        return AuditedAction("R", subtype, _entity(kind, rest[0]))
    if method == "PUT" and rest:
        return AuditedAction("U", "update", _entity(kind, rest[0]))
    if method == "POST" and rest == ["_search"]:
        return AuditedAction("E", "search-type", _entity(kind))
    if method == "POST" and rest[:1] == ["$evaluate"]:
        return AuditedAction("E", "operation", _entity(kind))
    if method == "POST" and not rest:
        return AuditedAction("C", "create", created or _entity(kind))
    return None


def staff_action(method: str, parts: list[str]) -> AuditedAction | None:
    """A staff API request (`/api/referrals...`); `parts` are the segments after `api`."""
    if parts[:1] != ["referrals"]:
        return None
    entity = _entity("ServiceRequest", parts[1]) if len(parts) > 1 else "ServiceRequest"
    if method == "GET":
        return AuditedAction("R" if len(parts) > 1 else "E", "read", entity)
    if method == "POST" and len(parts) == 3 and parts[2] in ("review", "retry"):
        return AuditedAction("U" if parts[2] == "review" else "E", parts[2], entity)
    return None


def record(uow: SqlUnitOfWork, audited: AuditedAction, **facts: Any) -> None:
    """`facts`: recorded, outcome, agent, source_ip, detail (codes only)."""
    uow.audit.add(
        AuditRow(
            id=uuid.uuid4().hex,
            action=audited.action,
            subtype=audited.subtype,
            entity=audited.entity,
            recorded=facts["recorded"],
            outcome=facts["outcome"],
            agent=str(facts["agent"])[:255],
            source_ip=facts.get("source_ip"),
            detail=(facts.get("detail") or None),
        ),
    )


_JOB_ACTIONS = {
    "evaluate": AuditedAction("E", "decision", None),
    "book": AuditedAction("C", "booking", None),
    "cancel": AuditedAction("U", "cancellation", None),
}


def record_job(uow: SqlUnitOfWork, job: Any, result: str, now: datetime) -> None:
    """A worker job's attempt (decision, booking, cancellation...), in the job's transaction."""
    known = _JOB_ACTIONS.get(job.kind, AuditedAction("E", str(job.kind)[:64], None))
    entity = f"ServiceRequest/{job.referral_id}" if job.referral_id else None
    failed = result.startswith("failed")
    record(
        uow,
        AuditedAction(known.action, known.subtype, entity),
        recorded=now,
        outcome="8" if failed else "0",
        agent=WORKER_AGENT,
        # The job's result is a code ("booked", "needs-review", "failed: EhrUnavailable").
        detail=result[:64],
    )


def read_event(runtime: Dependencies, audit_id: str) -> dict[str, Any]:
    with runtime.unit_of_work(read_only=True) as uow:
        row = uow.audit.get(audit_id)
    if row is None:
        raise NotKnown(f"AuditEvent/{audit_id} is not known")
    return audit_event(row)


def search_events(runtime: Dependencies, query: AuditQuery) -> tuple[list[dict[str, Any]], int]:
    with runtime.unit_of_work(read_only=True) as uow:
        rows, total = uow.audit.search(query)
    return [audit_event(row) for row in rows], total


def _subtype(code: str) -> dict[str, str]:
    system = REST_SUBTYPE_SYSTEM if code in REST_SUBTYPES else SERVICE_SUBTYPE_SYSTEM
    return {"system": system, "code": code}


def _event_type(row: AuditRow) -> dict[str, str]:
    if row.agent == WORKER_AGENT:
        return {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110100",
            "display": "Application Activity",
        }
    return {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    }


def _agent(row: AuditRow) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": row.agent}},
        "requestor": True,
    }
    if row.source_ip:
        agent["network"] = {"address": row.source_ip, "type": "2"}  # 2 = IP address
    return agent


def _entity_element(entity: str) -> dict[str, Any]:
    if "/" in entity:
        return {"what": {"reference": entity}}
    # A search or operation over a resource type: the type, never the query (it names patients).
    return {"type": {"system": "http://hl7.org/fhir/resource-types", "code": entity}}


def audit_event(row: AuditRow) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": row.id,
        "meta": {"lastUpdated": format_instant(row.recorded)},
        "type": _event_type(row),
        "subtype": [_subtype(row.subtype)],
        "action": row.action,
        "recorded": format_instant(row.recorded),
        "outcome": row.outcome,
        "agent": [_agent(row)],
        "source": {
            "observer": {"display": "referral-service"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if row.detail:
        event["outcomeDesc"] = row.detail
    if row.entity:
        event["entity"] = [_entity_element(row.entity)]
    return event
