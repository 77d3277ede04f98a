"""A clinician's review of a referral the engine could not decide alone (needs-review): what
approving or declining makes of the engine's decision, and where it moves the Task."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from referral_service.domain import lifecycle
from referral_service.domain.decision import Decision, Reason

# The protocol an approved referral is booked under when the engine named none.
DEFAULT_PROTOCOL = "standard-infusion"


def reviewed(decision: Decision, *, approve: bool, reviewer: str, at: datetime) -> Decision:
    """The decision after review: eligible (with a protocol to book) or ineligible, the review
    recorded as its last reason."""
    outcome = "approved" if approve else "declined"
    reason = Reason(
        "staff-review",
        "met" if approve else "not-met",
        f"{outcome} by {reviewer} at {at.isoformat()}",
    )
    return dataclasses.replace(
        decision,
        decision="eligible" if approve else "ineligible",
        protocol=(decision.protocol or DEFAULT_PROTOCOL) if approve else decision.protocol,
        reasons=(*decision.reasons, reason),
    )


def state_after_review(approve: bool) -> lifecycle.TaskState:
    return lifecycle.ELIGIBLE if approve else lifecycle.INELIGIBLE


def review_note(approve: bool, reviewer: str, note: str) -> str:
    """The Task's note about the review (the reviewer's own words after a colon)."""
    outcome = "approved" if approve else "declined"
    return f"review: {outcome} by {reviewer}" + (f": {note}" if note else "")
