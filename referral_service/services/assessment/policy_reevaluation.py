"""Re-deciding the open referrals under the current policy version, once, after a criteria
revision (`referral-service policy reevaluate`): every decision that changes is listed and
recorded in the referral's history (a `re-evaluated` event holding both decisions), its Task
follows, and a referral that became eligible is queued for booking. Decisions that stay the
same are left alone. No patient data in what it reports: referral ids and decisions only."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from referral_service.adapters.db.referrals import ReferralRow
from referral_service.adapters.ehr.errors import EhrUnavailable
from referral_service.domain import lifecycle
from referral_service.domain.decision import Decision
from referral_service.domain.errors import Unacceptable
from referral_service.fhir.outcome import FhirError
from referral_service.observability import metrics
from referral_service.services import jobs
from referral_service.services.assessment.evaluate import decide_stored
from referral_service.services.dependencies import Dependencies
from referral_service.services.tasks import write_task

# Decided and not final: what a new policy may still change (a booked, rejected, failed or
# cancelled referral is done; a received one is still waiting for its first evaluation, which
# uses the current policy anyway).
OPEN_BUSINESS_STATUSES = ("needs-information", "needs-review", "eligible", "ehr-retrying")


@dataclass(frozen=True)
class Outcome:
    """What a decision says that a clinic acts on."""

    decision: str
    category: str
    protocol: str | None
    excluded_drugs: tuple[str, ...]
    policy_version: str

    @classmethod
    def of(cls, decision: Decision) -> Outcome:
        return cls(
            decision.decision,
            decision.category,
            decision.protocol,
            tuple(sorted(decision.excluded_drugs)),
            decision.policy_version,
        )

    def acted_on(self) -> tuple[Any, ...]:
        return self.decision, self.category, self.protocol, self.excluded_drugs

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "category": self.category,
            "protocol": self.protocol,
            "excluded_drugs": list(self.excluded_drugs),
            "policy_version": self.policy_version,
        }


@dataclass(frozen=True)
class Change:
    referral_id: str
    before: Outcome
    after: Outcome
    applied: bool  # False on a dry run

    def to_dict(self) -> dict[str, Any]:
        return {
            "referral": self.referral_id,
            "from": self.before.to_dict(),
            "to": self.after.to_dict(),
            "applied": self.applied,
        }


@dataclass
class Report:
    policy_version: str
    dry_run: bool
    open: int = 0
    unchanged: int = 0
    changes: list[Change] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (referral id, why)

    def summary(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "dry_run": self.dry_run,
            "open": self.open,
            "changed": len(self.changes),
            "unchanged": self.unchanged,
            "skipped": len(self.skipped),
        }


def reevaluate_open_referrals(runtime: Dependencies, *, dry_run: bool = False) -> Report:
    """Evaluate every open referral under `runtime.policy`; apply the changes unless dry_run."""
    with runtime.unit_of_work(read_only=True) as uow:
        referral_ids = uow.referrals.ids_with_task_in(OPEN_BUSINESS_STATUSES)
    report = Report(runtime.policy.version, dry_run, open=len(referral_ids))
    for referral_id in referral_ids:
        _reevaluate(runtime, referral_id, report)
    return report


def _reevaluate(runtime: Dependencies, referral_id: str, report: Report) -> None:
    with runtime.unit_of_work(read_only=True) as uow:
        referral = uow.referrals.get(referral_id)
    if referral is None or referral.decision is None or referral.status != "active":
        report.skipped.append((referral_id, "no decision to re-evaluate"))
        return
    try:
        decision = decide_stored(runtime, referral)
    except (
        FhirError,
        Unacceptable,
        EhrUnavailable,
    ) as exc:  # the EHR is down, or the stored copy is unreadable
        report.skipped.append((referral_id, f"not evaluated: {type(exc).__name__}"))
        return
    before, after = Outcome.of(referral.decision), Outcome.of(decision)
    if before.acted_on() == after.acted_on():
        report.unchanged += 1
        return
    if not report.dry_run and not _apply(runtime, referral, decision, before, after):
        report.skipped.append((referral_id, "changed by another process meanwhile"))
        return
    report.changes.append(Change(referral_id, before, after, applied=not report.dry_run))


def _apply(
    runtime: Dependencies,
    referral: ReferralRow,
    decision: Decision,
    before: Outcome,
    after: Outcome,
) -> bool:
    """Record the new decision; False when the referral moved on since it was read (a new
    version, a new decision, a final Task): then its own evaluation stands."""
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        head = uow.referrals.head(referral.id, for_update=True)
        task = uow.tasks.for_referral(referral.id)
        if (
            head is None
            or task is None
            or head.version_id != referral.version_id
            or head.decision != referral.decision
            or task.state.business_status not in OPEN_BUSINESS_STATUSES
        ):
            return False
        uow.referrals.record_decision(referral.id, decision)
        state = lifecycle.state_for_decision(decision.decision)
        decided = replace(head, decision=decision)
        write_task(uow, referral.id, state, now, referral=decided, task=task)
        uow.events.add(
            referral.id,
            "re-evaluated",
            now,
            reason="policy reevaluate: a new policy version changed the decision",
            **{"from": before.to_dict(), "to": after.to_dict()},
        )
        if state == lifecycle.ELIGIBLE:
            attempt = f"policy-{decision.policy_version}"
            jobs.book(uow, referral.id, now, attempt_key=attempt)
    metrics.decision_made(decision.decision)
    return True
