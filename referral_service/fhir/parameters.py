"""The Decision as a FHIR Parameters resource (the `$evaluate` answer)."""

from __future__ import annotations

import json
from typing import Any

from referral_service.domain.decision import Decision, Reason


def decision_parameters(decision: Decision) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "referral", "valueString": decision.referral},
        {"name": "decision", "valueCode": decision.decision},
        {"name": "category", "valueCode": decision.category},
        {"name": "priority", "valueCode": decision.priority},
    ]
    if decision.protocol:
        parameters.append({"name": "protocol", "valueCode": decision.protocol})
    parameters += [{"name": "excluded-drug", "valueCode": d} for d in decision.excluded_drugs]
    if decision.earliest_start:
        parameters.append(
            {"name": "earliest-start", "valueDateTime": decision.earliest_start.isoformat()}
        )
    parameters += [_reason(reason) for reason in decision.reasons]
    parameters += [{"name": "missing", "valueString": item} for item in decision.missing]
    parameters.append({"name": "policy-version", "valueString": decision.policy_version})
    # The whole decision in the design.md JSON shape, for clients that want it as one document.
    parameters.append({"name": "decision-json", "valueString": json.dumps(decision.to_dict())})
    return {"resourceType": "Parameters", "parameter": parameters}


def _reason(reason: Reason) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "rule", "valueCode": reason.rule},
        {"name": "outcome", "valueCode": reason.outcome},
        {"name": "detail", "valueString": reason.detail},
    ]
    parts += [{"name": "evidence", "valueReference": {"reference": ref}} for ref in reason.evidence]
    return {"name": "reason", "part": parts}
