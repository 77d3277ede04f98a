"""The order of evaluation (criteria section 1): the first step that matches decides."""

from __future__ import annotations

from dataclasses import replace

from referral_service.domain.decision import Decision, new_reason
from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.categories import (
    CategoryResult,
    evaluate_categories,
    headache_coded,
)
from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import (
    MET,
    NOT_MET,
    UNKNOWN,
    Finding,
    at_least,
    known,
)
from referral_service.domain.eligibility.medications import washout_until
from referral_service.domain.eligibility.pregnancy import describe, latest_status, pregnant
from referral_service.domain.eligibility.protocols import (
    ProtocolPlan,
    choose_protocol,
    eptinezumab_criteria,
    plan_protocol,
    requested_protocol,
)
from referral_service.domain.eligibility.red_flags import (
    coded_findings,
    ed_exception,
    free_text_words,
    new_headache_high_risk,
    vital_signs,
)
from referral_service.domain.eligibility.trail import Trail
from referral_service.domain.eligibility.unreadable import (
    CONDITIONS,
    ED_VISIT,
    IMAGING,
    VITALS,
    category_reads,
    unless_unreadable,
)
from referral_service.domain.facts import ReferralFacts
from referral_service.domain.policy import Policy


def evaluate(facts: ReferralFacts, policy: Policy) -> Decision:
    """Decide one referral under a policy. Pure: same facts and policy, same decision."""
    chart = Chart(facts, policy)
    trail = Trail.start(chart)
    red_flag = _red_flags(chart, trail)
    if red_flag == "emergency-redirect":
        return trail.decide(red_flag)
    decision = _basics(chart, trail) or _clinical(chart, trail)
    if red_flag == "needs-review":
        # The ED exception decides at step 1; the later steps still run so that the reviewing
        # neurologist sees the category and protocol a booking would use.
        return replace(decision, decision="needs-review")
    return decision


def _red_flags(chart: Chart, trail: Trail) -> str | None:
    """Step 1; the free-text scan runs here too so that it is always on record."""
    coded = unless_unreadable(chart, coded_findings(chart), CONDITIONS)
    flags = (
        trail.add("red-flag.coded-finding", coded).outcome,
        trail.add("red-flag.new-headache-high-risk", new_headache_high_risk(chart)).outcome,
        trail.add(
            "red-flag.vital-signs", unless_unreadable(chart, vital_signs(chart), VITALS)
        ).outcome,
    )
    trail.add("red-flag.free-text", chart.once("free-text", free_text_words))
    if MET not in flags:
        return None
    exception = ed_exception(chart)
    # Without an ED Encounter only an unread Encounter could help; with one, only a report
    exception = unless_unreadable(chart, exception, IMAGING if exception.evidence else ED_VISIT)
    if trail.add("red-flag.ed-exception", exception).met:
        return "needs-review"
    return "emergency-redirect"


def _basics(chart: Chart, trail: Trail) -> Decision | None:
    """Steps 2-3: an adult with a headache diagnosis; step 4 starts with the birth date."""
    adult_age = chart.policy.thresholds["adult_age"]
    patient = (chart.facts.patient.ref,) if chart.facts.patient else ()
    adult = at_least(chart.age, adult_age, "age", missing.BIRTH_DATE, patient)
    if adult.outcome == NOT_MET:
        trail.add("age.adult", adult, f"{adult.note}: adult clinic, refer to paediatric neurology")
        return _unless_warning_words(chart, trail, "ineligible")
    trail.add("age.adult", adult)
    coded = trail.add("headache.coded", unless_unreadable(chart, headache_coded(chart), CONDITIONS))
    if coded.outcome == NOT_MET:
        return _unless_warning_words(chart, trail, "ineligible")
    if adult.outcome == UNKNOWN or coded.outcome == UNKNOWN:
        return _unless_warning_words(chart, trail, "needs-information")
    return None


def _unless_warning_words(
    chart: Chart, trail: Trail, decision: str, category: str = "none"
) -> Decision:
    """A decision before step 5 (steps 2-4) gives way to needs-review when the free text holds
    a red-flag word: a warning word is never decided silently (section 8 item 5). The category
    is the one the steps reached (`none` before the category step, 14f)."""
    words = chart.once("free-text", free_text_words)
    if not words.met:
        return trail.decide(decision, category)
    note = f"{words.note}: a clinician reads them (it would otherwise be {decision})"
    trail.add("review.free-text", words, note)
    return trail.decide("needs-review", category)


def _clinical(chart: Chart, trail: Trail) -> Decision:
    results = evaluate_categories(chart)
    if chart.facts.unreadable:
        results = [(c, unless_unreadable(chart, f, category_reads(c))) for c, f in results]
    for category, finding in results:
        trail.add("category." + category, finding)
    naming = None
    for category, finding in results[:-1]:
        if finding.outcome == MET:
            naming = category
            break
    if naming is None:
        return _no_category(chart, results, trail)
    if naming == "status-migrainosus":
        trail.raise_priority("asap")
    requested = requested_protocol(chart)
    protocol, reason = choose_protocol(chart, naming, requested)
    trail.reasons.append(reason)
    plan = plan_protocol(chart, protocol)
    if requested is None and _named_twice(chart, results, naming):
        plan = _unless_status_missing(chart, trail, plan)
    trail.reasons.extend(plan.reasons)
    return _review_and_finish(chart, trail, naming, results, plan)


def _named_twice(chart: Chart, results: list[CategoryResult], naming: str) -> bool:
    """A category below the naming one that would itself get the clinic's default protocol is
    met as well: one that would be eligible or needs-review on its own (cc §8 item 12), never
    `episodic` nor another category whose protocol waits for a pregnancy status."""
    names = [category for category, _ in results[:-1]]
    below = results[names.index(naming) + 1 : -1]
    by_category, default = chart.policy.protocol_by_category, chart.policy.default_protocol
    return any(
        finding.outcome == MET and by_category.get(category, default) == default
        for category, finding in below
    )


def _unless_status_missing(chart: Chart, trail: Trail, plan: ProtocolPlan) -> ProtocolPlan:
    """A protocol the naming category chose (nobody requested it) that would wait for a
    pregnancy status gives way to the clinic's default protocol, which needs none, when a lower
    category that would get that default is met too; the missing status is listed, and with it
    the referral gets the category's protocol. Asking instead would let removing the naming
    category's data (a medication-overuse code, say) turn a needs-information referral into an
    eligible one (docs/clinical-decisions.md, item 27)."""
    default = chart.policy.default_protocol
    drugs = chart.policy.protocols[plan.protocol].drugs
    if plan.protocol == default or chart.policy.pregnancy_status_protocol_drugs.isdisjoint(drugs):
        return plan
    status = _pregnancy_status(chart)
    if not status.unknown:
        return plan
    trail.add("pregnancy-status.recent", status)
    fallback = plan_protocol(chart, default)
    note = (
        f"{plan.protocol} (chosen by category, not requested) waits for a pregnancy status: "
        f"{default} instead"
    )
    fallback.reasons[:0] = [*plan.reasons, new_reason(("protocol.fallback", MET, note, ()))]
    return fallback


def _no_category(chart: Chart, results: list[CategoryResult], trail: Trail) -> Decision:
    """Step 4: nothing but episodic; unknown rules ask for data, else ineligible."""
    category = "episodic" if results[-1][1].outcome == MET else "none"
    if any(finding.outcome == UNKNOWN for _, finding in results):
        return _unless_warning_words(chart, trail, "needs-information", category)
    return _unless_warning_words(chart, trail, "ineligible", category)


def _review_and_finish(
    chart: Chart, trail: Trail, category: str, results: list[CategoryResult], plan: ProtocolPlan
) -> Decision:
    final = plan.protocol
    earliest = None
    if final == "dhe":
        earliest, refs = washout_until(chart)
        if earliest is not None:
            trail.reasons.append(
                new_reason(
                    (
                        "earliest-start.triptan-washout",
                        MET,
                        f"a triptan or ergot was taken in the last 24 hours: DHE from "
                        f"{earliest.isoformat()}",
                        refs,
                    )
                )
            )
    if _needs_review(chart, trail, category, plan):
        decision = "needs-review"
    elif _needs_information(chart, trail, final, results):
        decision = "needs-information"
    elif plan.protocol_excluded or _eptinezumab_not_met(trail, final):
        return trail.decide("ineligible", category)
    else:
        decision = "eligible"
    # A protocol whose defining drug is excluded is never reported, even for review.
    reported = None if plan.protocol_excluded else final
    if not reported:
        return trail.decide(decision, category)
    return trail.decide(decision, category, reported, tuple(plan.excluded_drugs), earliest)


def _needs_review(chart: Chart, trail: Trail, category: str, plan: ProtocolPlan) -> bool:
    """Step 5: a clinician decides."""
    review_category = category in chart.policy.review_categories
    note = (
        f"{category}: a neurologist decides" if review_category else f"{category} needs no review"
    )
    outcomes = (  # every check is on record, so no short-circuit
        trail.add("review.category", known(review_category, note)).outcome,
        trail.add("review.pregnancy", pregnant(chart)).outcome,
        trail.add("review.free-text", chart.once("free-text", free_text_words)).outcome,
        trail.add("review.relative-contraindication", _cautions(plan)).outcome,
    )
    return MET in outcomes


def _cautions(plan: ProtocolPlan) -> Finding:
    if not plan.cautions:
        return known(False, f"no relative contraindication to {plan.protocol}")
    return Finding(
        MET,
        "; ".join(c.note for c in plan.cautions),
        tuple(dict.fromkeys(e for c in plan.cautions for e in c.evidence)),
    )


def _needs_information(
    chart: Chart, trail: Trail, final: str, results: list[CategoryResult]
) -> bool:
    """Step 6: a pregnancy status before DHE/valproate; eptinezumab criteria settled."""
    unknown = False
    drugs = chart.policy.protocols[final].drugs
    if not chart.policy.pregnancy_status_protocol_drugs.isdisjoint(drugs):
        status = trail.add("pregnancy-status.recent", _pregnancy_status(chart))
        unknown = status.outcome == UNKNOWN
    if final == "eptinezumab":
        met = {category for category, finding in results if finding.outcome == MET}
        criteria = eptinezumab_criteria(chart, lambda category: category in met)
        unknown = trail.add("eptinezumab.criteria", criteria).unknown or unknown
    return unknown


def _pregnancy_status(chart: Chart) -> Finding:
    limits = chart.policy.thresholds
    sex, age = chart.facts.patient.sex if chart.facts.patient else None, chart.age
    if (
        sex == "male"
        or age is None
        or not (limits["childbearing_age_min"] <= age <= limits["childbearing_age_max"])
    ):
        return _STATUS_NOT_NEEDED
    days = chart.policy.windows["pregnancy_test_days"]
    status = latest_status(chart, days)
    if status is None:
        return Finding(
            "unknown",
            f"no pregnancy status within {days} days",
            (),
            (missing.PREGNANCY_STATUS.format(days=days),),
        )
    return known(True, f"pregnancy status within {days} days: {describe(status)}", (status.ref,))


_STATUS_NOT_NEEDED = known(True, "no pregnancy status needed (not a female aged 12-55)")


def _eptinezumab_not_met(trail: Trail, final: str) -> bool:
    """Step 7 (criteria already recorded at step 6)."""
    return final == "eptinezumab" and any(
        r.rule == "eptinezumab.criteria" and r.outcome == NOT_MET for r in trail.reasons
    )
