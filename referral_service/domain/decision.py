"""The Decision value object: what the eligibility engine says about one referral, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from operator import itemgetter
from typing import Any

DECISIONS = ("eligible", "ineligible", "needs-information", "needs-review", "emergency-redirect")
OUTCOMES = ("met", "not-met", "unknown")
PRIORITIES = ("routine", "urgent", "asap", "stat")


class Reason(tuple):  # type: ignore[type-arg]
    """Why one rule came out as it did. An immutable tuple underneath with named fields: an
    evaluation makes about 25 of these, and a frozen dataclass costs several times as much to
    build. Equal only to another Reason with the same fields, like a dataclass."""

    __slots__ = ()
    __match_args__ = ("rule", "outcome", "detail", "evidence")
    rule: str = property(itemgetter(0))  # type: ignore[assignment]
    outcome: str = property(itemgetter(1))  # type: ignore[assignment]  # one of OUTCOMES
    detail: str = property(itemgetter(2))  # type: ignore[assignment]
    evidence: tuple[str, ...] = property(itemgetter(3))  # type: ignore[assignment]

    def __new__(
        cls, rule: str, outcome: str, detail: str, evidence: tuple[str, ...] = ()
    ) -> Reason:
        return tuple.__new__(cls, (rule, outcome, detail, evidence))

    def __eq__(self, other: object) -> bool:
        # False, not NotImplemented: a plain tuple would otherwise compare by its items
        return type(other) is Reason and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return (
            f"Reason(rule={self[0]!r}, outcome={self[1]!r}, detail={self[2]!r}, "
            f"evidence={self[3]!r})"
        )

    def __getnewargs__(self) -> tuple[str, str, str, tuple[str, ...]]:
        return tuple(self)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self[0],
            "outcome": self[1],
            "detail": self[2],
            "evidence": list(self[3]),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(data["rule"], data["outcome"], data["detail"], tuple(data.get("evidence", ())))


# Reason(...) without a Python frame, for the engine's hot path: new_reason((rule, outcome,
# detail, evidence)), all four given.
new_reason = partial(tuple.__new__, Reason)


@dataclass(frozen=True, slots=True)
class Decision:
    referral: str
    decision: str  # one of DECISIONS
    category: str
    priority: str
    protocol: str | None
    excluded_drugs: tuple[str, ...] = ()
    earliest_start: datetime | None = None
    reasons: tuple[Reason, ...] = ()
    missing: tuple[str, ...] = ()
    policy_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "referral": self.referral,
            "decision": self.decision,
            "category": self.category,
            "priority": self.priority,
            "protocol": self.protocol,
            "excluded_drugs": list(self.excluded_drugs),
            "earliest_start": self.earliest_start.isoformat() if self.earliest_start else None,
            "reasons": [r.to_dict() for r in self.reasons],
            "missing": list(self.missing),
            "policy_version": self.policy_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        start = data.get("earliest_start")
        return cls(
            referral=data["referral"],
            decision=data["decision"],
            category=data["category"],
            priority=data["priority"],
            protocol=data.get("protocol"),
            excluded_drugs=tuple(data.get("excluded_drugs", ())),
            earliest_start=datetime.fromisoformat(start) if start else None,
            reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", ())),
            missing=tuple(data.get("missing", ())),
            policy_version=data.get("policy_version", ""),
        )
