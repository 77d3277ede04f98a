"""Console actions in the audit trail, recorded like the staff API's review and retry: who,
which referral, what, with what outcome, from where; codes and ids only."""

from __future__ import annotations

import logging

from flask import Response, request

from referral_service.api.console.access import staff_member
from referral_service.api.fhir_io import runtime

log = logging.getLogger(__name__)

# Endpoint -> (AuditEvent.action, subtype), matching services/audit.staff_action's codes.
AUDITED = {
    "console.review": ("U", "review"),
    "console.retry": ("E", "retry"),
    "console.cancel": ("U", "cancellation"),
}


def record_action(response: Response) -> None:
    known = AUDITED.get(request.endpoint or "")
    if request.method != "POST" or known is None:
        return
    from referral_service.services.staff import audit

    referral_id = str((request.view_args or {}).get("referral_id", ""))
    # The staff API's mapping names the entity, so a hostile id is never copied into the trail.
    read = audit.staff_action("GET", ["referrals", referral_id])
    action = audit.AuditedAction(known[0], known[1], read.entity if read else None)
    try:
        with runtime().unit_of_work() as uow:
            audit.record(
                uow,
                action,
                recorded=runtime().now(),
                outcome=audit.outcome_code(response.status_code),
                agent=staff_member(),
                source_ip=(request.remote_addr or "")[:64] or None,
                detail="console",
            )
    except Exception as exc:  # the answer is decided; say the trail missed one, never why in data
        log.error("audit record failed: %s", type(exc).__name__)
