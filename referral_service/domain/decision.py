"""The Decision value object: what the eligibility engine says about one referral, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DECISIONS = ("eligible", "ineligible", "needs-information", "needs-review", "emergency-redirect")
OUTCOMES = ("met", "not-met", "unknown")
PRIORITIES = ("routine", "urgent", "asap", "stat")


@dataclass(frozen=True)
class Reason:
    rule: str
    outcome: str  # one of OUTCOMES
    detail: str
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "detail": self.detail,
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(data["rule"], data["outcome"], data["detail"], tuple(data.get("evidence", ())))


@dataclass(frozen=True)
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
