"""The referral lifecycle: which Task status and businessStatus each stage shows (design.md)."""

from __future__ import annotations

from dataclasses import dataclass

BUSINESS_STATUS_SYSTEM = "https://referral-service.dev/task-business-status"


@dataclass(frozen=True)
class TaskState:
    status: str
    business_status: str

    @property
    def is_final(self) -> bool:
        return self.business_status in FINAL_BUSINESS_STATUSES


RECEIVED = TaskState("received", "received")
EMERGENCY_REDIRECT = TaskState("rejected", "emergency-redirect")
INELIGIBLE = TaskState("rejected", "ineligible")
NEEDS_INFORMATION = TaskState("on-hold", "needs-information")
NEEDS_REVIEW = TaskState("received", "needs-review")
ELIGIBLE = TaskState("accepted", "eligible")
BOOKED = TaskState("accepted", "booked")
NO_SLOT = TaskState("failed", "no-slot")
EHR_FAILED = TaskState("failed", "ehr-failed")
CANCELLED = TaskState("cancelled", "cancelled")

FINAL_BUSINESS_STATUSES = frozenset(
    {"emergency-redirect", "ineligible", "booked", "no-slot", "ehr-failed", "cancelled"}
)

_BY_DECISION = {
    "emergency-redirect": EMERGENCY_REDIRECT,
    "ineligible": INELIGIBLE,
    "needs-information": NEEDS_INFORMATION,
    "needs-review": NEEDS_REVIEW,
    "eligible": ELIGIBLE,
}


def state_for_decision(decision: str) -> TaskState:
    return _BY_DECISION[decision]


def ehr_retrying(current: TaskState) -> TaskState:
    """The EHR is unreachable and the worker will retry: the status stays, the reason shows."""
    return TaskState(current.status, "ehr-retrying")


def may_reevaluate(current: TaskState) -> bool:
    """A new version of a referral is evaluated again unless it is booked or cancelled: a booked
    referral keeps its appointment until a clinician or the referrer cancels it."""
    return current.business_status not in {"booked", "cancelled"}


def may_book(current: TaskState) -> bool:
    return current.business_status in {"eligible", "ehr-retrying"}


def may_review(current: TaskState) -> bool:
    return current.business_status == "needs-review"


def may_retry_booking(current: TaskState) -> bool:
    return current.business_status in {"ehr-failed", "no-slot"}
