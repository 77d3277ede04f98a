"""The referral form's web links: an HMAC-signed, expiring token (itsdangerous) bound to one
referral and its current needs-information round. It carries the referral's id and a digest of
the round, never patient data; one submission per token (the stored answers claim its digest)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from referral_service.domain.decision import Decision

_SALT = "referral-form-link"


class LinkRefused(Exception):
    """Why a link cannot be used: `reason` is expired, invalid, superseded or used."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaim:
    referral_id: str
    round: str
    digest: str  # the token's digest: the stored answers' identifier, so it is used once


def needs_round(version_id: int, decision: Decision | None) -> str:
    """The needs-information round: the referral's version and what its decision misses."""
    missing = "\n".join(decision.missing) if decision is not None else ""
    text = f"{version_id}\n{decision.policy_version if decision else ''}\n{missing}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class FormLinks:
    secret: str
    days: int
    base_url: str = ""  # REFERRAL_PUBLIC_URL; empty: a path on this server

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=_SALT)

    def token(self, referral_id: str, round_: str) -> str:
        return str(self._serializer().dumps({"r": referral_id, "n": round_}))

    def url(self, referral_id: str, round_: str) -> str:
        return f"{self.base_url}/referral-form/{self.token(referral_id, round_)}"

    def read(self, token: str) -> LinkClaim:
        """The referral and round a token names, if its signature holds and it is in date."""
        try:
            data = self._serializer().loads(token, max_age=self.days * 86400)
        except SignatureExpired:
            raise LinkRefused("expired") from None
        except BadSignature:
            raise LinkRefused("invalid") from None
        if not isinstance(data, dict) or not isinstance(data.get("r"), str):
            raise LinkRefused("invalid")
        return LinkClaim(data["r"], str(data.get("n")), token_digest(token))
