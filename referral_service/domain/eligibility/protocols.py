"""Protocol choice and contraindications (criteria sections 4.3 and 5)."""

from __future__ import annotations

from collections.abc import Callable

from referral_service.domain.decision import Reason, new_reason
from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import (
    MET,
    NOT_MET,
    Finding,
    all_of,
    at_least,
    known,
)
from referral_service.domain.eligibility.medication_records import describe, is_new_evidence
from referral_service.domain.eligibility.medications import failed_at_least
from referral_service.domain.eligibility.pregnancy import pregnant
from referral_service.domain.policy import Criterion, DrugList


class ProtocolPlan:
    """The protocol after exclusions and fallback, with what was dropped and why."""

    __slots__ = ("protocol", "excluded_drugs", "reasons", "cautions", "protocol_excluded")

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.excluded_drugs: list[str] = []
        self.reasons: list[Reason] = []
        self.cautions: list[Finding] = []
        self.protocol_excluded = False


def requested_protocol(chart: Chart) -> str | None:
    requested = chart.facts.requested
    if requested is None:
        return None
    code = requested.code_in(chart.policy.protocol_system)
    return code if code in chart.policy.protocols else None


def choose_protocol(chart: Chart, category: str, requested: str | None) -> tuple[str, Reason]:
    """The requested protocol (requested_protocol(chart)), else the category's."""
    if requested is not None:
        return requested, new_reason(
            ("protocol.requested", MET, f"the referrer requested {requested}", (chart.facts.ref,))
        )
    chosen = chart.policy.protocol_by_category.get(category, chart.policy.default_protocol)
    return chosen, new_reason(
        ("protocol.requested", NOT_MET, f"no protocol requested; {category} gets {chosen}", ())
    )


def plan_protocol(chart: Chart, protocol: str) -> ProtocolPlan:
    """Drop excluded drugs; a protocol whose defining drug is excluded falls back or fails."""
    spec = chart.policy.protocols[protocol]
    contraindications = chart.policy.contraindications
    plan = ProtocolPlan(protocol)
    for drug in spec.drugs:
        rules = contraindications.get(drug)
        if rules is None or not rules.excluded:
            continue
        finding = _criteria(chart, rules.excluded)
        plan.reasons.append(_exclusion_reason(drug, finding))
        if finding.outcome == MET:
            plan.excluded_drugs.append(drug)
    if spec.defining in plan.excluded_drugs:
        if spec.fallback is None:
            plan.protocol_excluded = True
            return plan
        fallback = plan_protocol(chart, spec.fallback)
        note = f"{spec.defining} excluded: {protocol} falls back to {spec.fallback}"
        fallback.reasons[:0] = [*plan.reasons, Reason("protocol.fallback", "met", note)]
        return fallback
    for drug in spec.drugs:
        rules = contraindications.get(drug)
        # (an excluded drug's cautions are not recorded, so they are not checked either)
        if rules is None or not rules.relative or drug in plan.excluded_drugs:
            continue
        finding = _criteria(chart, rules.relative)
        plan.reasons.append(_caution_reason(drug, finding))
        if finding.outcome == MET:
            plan.cautions.append(finding)
    return plan


# The detail of each: only the text for the finding's outcome is built.


def _exclusion_reason(drug: str, finding: Finding) -> Reason:
    outcome, note, evidence, _ = finding
    detail = f"{drug} excluded: {note}" if outcome == MET else f"nothing excludes {drug}"
    return new_reason(("exclusion." + drug, outcome, detail, evidence))


def _caution_reason(drug: str, finding: Finding) -> Reason:
    outcome, note, evidence, _ = finding
    if outcome == MET:
        detail = f"{drug} needs review: {note}"
    else:
        detail = f"no relative contraindication to {drug}"
    return new_reason(("caution." + drug, outcome, detail, evidence))


def _criteria(chart: Chart, criteria: tuple[Criterion, ...]) -> Finding:
    """Met when any of a drug's (excluded or relative) criteria holds."""
    labels: list[str] = []
    evidence: list[str] = []
    counted_mask = chart.counted_mask
    for crit in criteria:
        if crit.kind == "condition" and not crit.codes.bit & counted_mask:
            continue  # the common case: no counted Condition or reasonCode in the set at all
        refs = _CHECKS[crit.kind](chart, crit)
        if refs:
            labels.append(_named(chart, crit) if crit.kind == "medication" else crit.label)
            evidence += refs
    if labels:
        return Finding(MET, "; ".join(labels), tuple(dict.fromkeys(evidence)))
    return _NOTHING


_NOTHING = known(False)


# Each check returns the references that show the criterion holds; empty when it does not.


def _condition(chart: Chart, crit: Criterion) -> tuple[str, ...]:
    return chart.coded(crit.codes)


def _history(chart: Chart, crit: Criterion) -> tuple[str, ...]:
    refs = []
    for cond in chart.history_with(crit.codes):
        when = cond.onset_or_recorded
        if when is None or chart.days_ago(when) > crit.older_than_days:
            refs.append(cond.ref)
    return tuple(refs)


def _pregnancy(chart: Chart, crit: Criterion) -> tuple[str, ...]:
    found = pregnant(chart)
    return (found.evidence or (chart.facts.ref,)) if found.outcome == MET else ()


def _medication(chart: Chart, crit: Criterion) -> tuple[str, ...]:
    return _active(chart, crit.drugs)[0]


def _named(chart: Chart, crit: Criterion) -> str:
    words = _active(chart, crit.drugs)[1]
    return f"{crit.label}: {'; '.join(words)}" if words else crit.label


def _active(chart: Chart, drugs: DrugList) -> tuple[tuple[str, ...], list[str]]:
    """The references of the active medications naming one of the drugs, and the plain words
    for those only revision 2026-12 reads (a prescription, a Medication, a brand name)."""
    records = chart.policy.medication_records
    refs: list[str] = []
    words: list[str] = []
    for med, ids in chart.active_records(drugs):
        refs.append(med.ref)
        if is_new_evidence(med, ids, records):
            words.append(describe(med, ids & drugs.ids, records, course=False))
            refs += [med.medication_ref] if med.medication_ref else []
    return tuple(refs), words


def _allergy(chart: Chart, crit: Criterion) -> tuple[str, ...]:
    return tuple(a.ref for a in chart.allergies_to(crit.drugs))


def latest_egfr(chart: Chart) -> tuple[float, str] | None:
    days = chart.policy.windows["egfr_days"]
    readings = [
        r
        for r in chart.readings_of(chart.policy.observations["egfr"])
        if chart.within_days(r[1], days)
    ]
    if not readings:
        return None
    # Latest decides; two readings at the same time: the lower (worse) one, whatever the order.
    value, _, ref = max(readings, key=lambda r: (r[1], -r[0]))  # type: ignore[arg-type,return-value]
    return value, ref


def _egfr(chart: Chart, crit: Criterion) -> tuple[str, ...]:
    latest = latest_egfr(chart)
    if latest is None:
        return ()
    value, ref = latest
    low = crit.at_least if crit.at_least is not None else float("-inf")
    high = crit.below if crit.below is not None else float("inf")
    return (ref,) if low <= value < high else ()


def _blood_pressure(chart: Chart, crit: Criterion) -> tuple[str, ...]:
    days = chart.policy.windows["dhe_blood_pressure_days"]
    obs = chart.policy.observations
    refs: list[str] = []
    for kind, limit in (("systolic", crit.systolic), ("diastolic", crit.diastolic)):
        if limit is not None:
            for value, when, ref in chart.readings_of(obs[kind]):
                if value >= limit and chart.within_days(when, days):
                    refs.append(ref)
    return tuple(dict.fromkeys(refs))


_CHECKS: dict[str, Callable[[Chart, Criterion], tuple[str, ...]]] = {
    "condition": _condition,
    "history": _history,
    "pregnancy": _pregnancy,
    "medication": _medication,
    "egfr": _egfr,
    "blood-pressure": _blood_pressure,
    "allergy": _allergy,
}


def eptinezumab_criteria(chart: Chart, category_met: Callable[[str], bool]) -> Finding:
    """4.3: adult, >= 4 migraine days (or chronic migraine), >= 2 failed classes, no active
    CGRP antibody or gepant preventive, no allergy to eptinezumab."""
    limits = chart.policy.thresholds
    age = chart.age
    adult = at_least(age, limits["eptinezumab_min_age"], "age", missing.BIRTH_DATE)
    if category_met("chronic-migraine"):
        days = known(True, "chronic migraine")
    else:
        obs = chart.metric("migraine_days")
        days = at_least(
            obs.value if obs else None,
            limits["eptinezumab_migraine_days"],
            "migraine days/month",
            missing.MIGRAINE_DAYS,
            (obs.ref,) if obs else (),
        )
    failed = failed_at_least(chart, int(limits["eptinezumab_failed_classes"]))
    active, words = _active(chart, chart.policy.cgrp_preventives)
    note = "; ".join(["active CGRP antibody or gepant preventive", *words]) if active else ""
    no_cgrp = known(not active, note, active)
    allergy = tuple(a.ref for a in chart.allergies_to(chart.policy.drugs["eptinezumab"]))
    no_allergy = known(not allergy, "allergy to eptinezumab" if allergy else "", allergy)
    return all_of(adult, days, failed, no_cgrp, no_allergy)
