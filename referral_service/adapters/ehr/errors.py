"""Typed EHR errors. `retryable` tells the worker whether trying again later can help."""

from __future__ import annotations

from typing import Any


class EhrError(Exception):
    retryable = False

    def __init__(
        self, message: str, *, status: int | None = None, outcome: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class EhrUnavailable(EhrError):
    """Connection failure, timeout, 429 or 5xx (after the client's own retries): retry later."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcome: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, outcome=outcome)
        self.retry_after = retry_after


class ScheduleBusy(EhrUnavailable):
    """Another booking held the clinic's booking lock too long (a slow EHR): retry later."""


class EhrNotFound(EhrError):
    """404 / 410."""


class EhrConflict(EhrError):
    """409 / 412: someone else changed the resource first (version or business conflict)."""


class EhrAuthError(EhrError):
    """401 / 403, or the token endpoint refused our client: configuration, not transient."""


class EhrRequestError(EhrError):
    """Any other 4xx: the EHR refused what we sent (the OperationOutcome text says why)."""


class EhrDataError(EhrError):
    """The EHR answered with something we cannot use (not JSON, a time without offset...)."""


def outcome_text(outcome: dict[str, Any] | None) -> str:
    """The human-readable part of an OperationOutcome, issue by issue."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return ""
    parts = []
    for issue in outcome.get("issue", []):
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        code = issue.get("code", "")
        parts.append(f"{code}: {text}" if text else code)
    return "; ".join(p for p in parts if p)
