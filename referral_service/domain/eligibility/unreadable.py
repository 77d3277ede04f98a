"""References that could not be read (criteria section 8 item 13): they make `unknown` only the
rules that read what they may point to, and only where those rules found nothing; what a rule
found elsewhere in the referral (a red flag, a category code) still stands."""

from __future__ import annotations

from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.categories import METRIC_CATEGORIES
from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import NOT_MET, UNKNOWN, Finding, new_finding

# The resource types each rule reads
CONDITIONS = frozenset({"Condition"})
VITALS = frozenset({"Observation"})
ED_VISIT = frozenset({"Encounter"})
IMAGING = frozenset({"DiagnosticReport"})
_BY_METRICS = frozenset(
    {"Condition", "Observation", "MedicationStatement", "MedicationRequest", "AllergyIntolerance"}
)


def category_reads(category: str) -> frozenset[str]:
    """A category by code reads Conditions; by metrics, Observations and medications too."""
    return _BY_METRICS if category in METRIC_CATEGORIES else CONDITIONS


def unless_unreadable(chart: Chart, finding: Finding, reads: frozenset[str]) -> Finding:
    """A not-met finding is unknown while a reference that may be one of `reads` is unread."""
    unread = chart.facts.unreadable
    if not unread or finding[0] != NOT_MET:
        return finding
    refs = [u.ref for u in unread if not u.kinds or not u.kinds.isdisjoint(reads)]
    if not refs:
        return finding
    note = f"{finding[1]}; {', '.join(refs)} could not be read".lstrip("; ")
    wanted = tuple(missing.UNREADABLE.format(ref=ref) for ref in refs)
    return new_finding((UNKNOWN, note, finding[2], wanted))
