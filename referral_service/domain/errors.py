"""What a use case refuses, in the clinic's words. The entry points say it in their own terms
(`fhir.outcome.as_fhir_error`: an OperationOutcome with its HTTP status)."""

from __future__ import annotations


class DomainError(Exception):
    """`where`: the elements the refusal concerns (FHIRPath, e.g. "ServiceRequest.id")."""

    def __init__(self, message: str, *where: str) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class NotKnown(DomainError):
    """No such referral, resource or appointment (or not the caller's: ids never leak)."""


class WrongState(DomainError):
    """The referral is not where this action applies (reviewing a booked referral, say)."""


class AlreadyHeld(DomainError):
    """An identifier already names another referral or resource."""


class StaleVersion(DomainError):
    """The version the caller changed (If-Match) is no longer the current one."""


class Unacceptable(DomainError):
    """Content the clinic cannot take as sent (an id that is not the one addressed, a focus
    that is not the sender's referral, a referral the engine cannot read)."""


class TooLong(Unacceptable):
    """A value over what the clinic stores."""


class Contended(DomainError):
    """Another request changed the same records at the same moment: the client may retry."""
