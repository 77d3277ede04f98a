"""The Trail: reasons and missing data gathered as the rules run, turned into a Decision."""

from __future__ import annotations

from datetime import datetime

from referral_service.domain.decision import PRIORITIES, Decision, Reason, new_reason
from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import Finding


class Trail:
    __slots__ = ("chart", "priority", "reasons", "missing")

    def __init__(self, chart: Chart, priority: str) -> None:
        self.chart = chart
        self.priority = priority
        self.reasons: list[Reason] = []
        self.missing: list[str] = []

    @classmethod
    def start(cls, chart: Chart) -> Trail:
        own = chart.facts.priority
        return cls(chart, own if own in PRIORITIES else "routine")

    def add(self, rule: str, finding: Finding, detail: str = "") -> Finding:
        """Record a rule that ran; an unknown rule says what would settle it."""
        outcome, note, evidence, wanted = finding
        self.reasons.append(new_reason((rule, outcome, detail or note or rule, evidence)))
        if wanted:  # only unknown findings carry missing data
            for item in wanted:
                if item not in self.missing:
                    self.missing.append(item)
        return finding

    def raise_priority(self, floor: str) -> None:
        if PRIORITIES.index(self.priority) < PRIORITIES.index(floor):
            self.priority = floor

    def decide(
        self,
        decision: str,
        category: str = "none",
        protocol: str | None = None,
        excluded_drugs: tuple[str, ...] = (),
        earliest_start: datetime | None = None,
    ) -> Decision:
        return Decision(
            referral=self.chart.facts.referral,
            decision=decision,
            category=category,
            priority=self.priority,
            protocol=protocol,
            excluded_drugs=excluded_drugs,
            earliest_start=earliest_start,
            reasons=tuple(self.reasons),
            missing=tuple(self.missing),
            policy_version=self.chart.policy.version,
        )
