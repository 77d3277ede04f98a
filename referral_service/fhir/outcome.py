"""FHIR errors as exceptions, and their OperationOutcome rendering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from referral_service.domain import errors


@dataclass(frozen=True)
class Issue:
    code: str  # HL7 issue-type: structure, required, value, invalid, not-found, conflict, ...
    diagnostics: str
    expression: tuple[str, ...] = ()
    severity: str = "error"

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


class FhirError(Exception):
    """An error a client should see as an OperationOutcome with `status`."""

    status = 400

    def __init__(
        self, *issues: Issue, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__("; ".join(issue.diagnostics for issue in issues))
        self.issues = issues
        if status is not None:
            self.status = status
        self.headers = headers or {}

    @classmethod
    def single(cls, code: str, diagnostics: str, *expression: str, **kwargs: Any) -> FhirError:
        return cls(Issue(code, diagnostics, tuple(expression)), **kwargs)


class Unreadable(FhirError):
    status = 400


class NotFound(FhirError):
    status = 404


class MethodNotAllowed(FhirError):
    status = 405


class NotAcceptable(FhirError):
    status = 406


class Conflict(FhirError):
    status = 409


class PreconditionFailed(FhirError):
    status = 412


class TooLarge(FhirError):
    status = 413


class UnsupportedMediaType(FhirError):
    status = 415


class Unprocessable(FhirError):
    status = 422


# A use case's refusal as the FHIR API says it: the error class (its HTTP status) and issue code.
_REFUSALS: tuple[tuple[type[errors.DomainError], type[FhirError], str], ...] = (
    (errors.NotKnown, NotFound, "not-found"),
    (errors.WrongState, Conflict, "conflict"),
    (errors.AlreadyHeld, Conflict, "conflict"),
    (errors.Contended, Conflict, "conflict"),
    (errors.StaleVersion, PreconditionFailed, "conflict"),
    (errors.TooLong, Unprocessable, "value"),
    (errors.Unacceptable, Unprocessable, "invalid"),
)


def as_fhir_error(refusal: errors.DomainError) -> FhirError:
    for kind, error, code in _REFUSALS:
        if isinstance(refusal, kind):
            return error(Issue(code, refusal.message, refusal.where))
    return FhirError(Issue("processing", refusal.message, refusal.where))


def operation_outcome(issues: tuple[Issue, ...] | list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_fhir() for issue in issues]}


def information_outcome(text: str) -> dict[str, Any]:
    return operation_outcome([Issue("informational", text, severity="information")])
