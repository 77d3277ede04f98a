"""Which job failures a retry can fix, and the words staff read when one cannot.

A poisoned input (a control character the database refuses, a resource that is not valid FHIR,
a decision naming no protocol) fails the same way on every attempt: such a job is dead-lettered
on its first failure instead of spending every attempt and backoff on it.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError

from referral_service.adapters.ehr.errors import EhrDataError, EhrRequestError
from referral_service.domain.scheduling.booking import NotBookable
from referral_service.domain.scheduling.clinic import ClinicError
from referral_service.fhir.outcome import FhirError

_PERMANENT: tuple[type[BaseException], ...] = (
    DataError,
    UnicodeError,
    FhirError,
    EhrDataError,
    EhrRequestError,
    NotBookable,
    ClinicError,
)


def is_permanent(exc: BaseException) -> bool:
    """True when running the job again would fail the same way."""
    return isinstance(exc, _PERMANENT)


def reason(exc: BaseException) -> str:
    """Why the job cannot succeed, for the Task note and the history: never the submitted data
    (a database error quotes the statement's parameters, so only its kind is kept)."""
    if isinstance(exc, DataError):
        return f"the database refused the data ({type(exc.orig).__name__})"
    if isinstance(exc, UnicodeError):
        return "the data is not valid text"
    if isinstance(exc, FhirError):
        return "; ".join(issue.diagnostics for issue in exc.issues)[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
