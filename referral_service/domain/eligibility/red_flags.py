"""Red flags (criteria section 2): coded findings, new headache in a high-risk patient,
vital signs, red-flag words in free text, and the emergency-department exception."""

from __future__ import annotations

from datetime import datetime

from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.chart import Chart
from referral_service.domain.eligibility.logic import (
    MET,
    Finding,
    all_of,
    any_of,
    known,
    unknown,
)
from referral_service.domain.eligibility.pregnancy import pregnant
from referral_service.domain.facts import ICD10_CM, Concept, ConditionFact
from referral_service.domain.policy import RedFlag


def coded_findings(chart: Chart) -> Finding:
    """2.1: an active Condition or a reasonCode in the red-flag list; acute events only
    while recent (or when their date is unknown)."""
    found: list[str] = []
    evidence: list[str] = []
    if not chart.policy.red_flag_bits & chart.counted_mask:
        return _NO_RED_FLAG
    for flag in chart.policy.red_flags:
        conditions = [c for c in chart.conditions_with(flag.codes) if _current(chart, flag, c)]
        refs = [c.ref for c in conditions]
        reasons = chart.reason_codes_with(flag.codes)
        if reasons:
            refs.append(chart.facts.ref)
        if refs:
            named = _named_evidence(chart, flag, conditions, reasons) if flag.named else ""
            found.append(f"{flag.finding} ({named})" if named else flag.finding)
            evidence.extend(refs)
    if found:
        return known(True, "red-flag finding: " + ", ".join(found), tuple(dict.fromkeys(evidence)))
    return _NO_RED_FLAG


_NO_RED_FLAG = known(False, "no red-flag diagnosis")


def _named_evidence(
    chart: Chart, flag: RedFlag, conditions: list[ConditionFact], reasons: list[Concept]
) -> str:
    """The codes the policy names in plain words, with when: "altered mental status R41.82
    recorded 2 days ago"."""
    words = []
    for concept, when in [(c.code, _when(chart, c)) for c in conditions] + [
        (r, "in the referral's reasons") for r in reasons
    ]:
        for code in concept.codes:
            if code.system != ICD10_CM:
                continue
            for prefix, written, name in flag.named:
                if code.code.startswith(prefix):
                    words.append(f"{name} {written} {when}")
    return "; ".join(dict.fromkeys(words))


def _when(chart: Chart, cond: ConditionFact) -> str:
    verb, when = ("began", cond.onset) if cond.onset is not None else ("recorded", cond.recorded)
    if when is None:
        return "with no date"
    days = int(chart.days_ago(when))
    if days == 0:
        return f"{verb} today"
    shown = f"{abs(days)} day{'s' if abs(days) > 1 else ''}"
    return f"{verb} {shown} ago" if days > 0 else f"{verb} {shown} after the referral"


def _current(chart: Chart, flag: RedFlag, cond: ConditionFact) -> bool:
    if not flag.acute:
        return True
    when = cond.onset_or_recorded
    return when is None or chart.days_ago(when) <= chart.policy.windows["acute_event_days"]


def new_headache_high_risk(chart: Chart) -> Finding:
    """2.2: a headache begun within 90 days in a patient over 50 at onset, with cancer,
    immunosuppression, pregnancy or just after childbirth."""
    codes = chart.policy.code_sets
    chronic = chart.coded(codes["never_new"])
    if chronic:
        return known(False, "a chronic headache code is never a new headache", chronic)
    earliest = chart.headache_onset()
    if earliest is None:
        return unknown("the headache's onset is not known", missing.HEADACHE_ONSET)
    onset, ref = earliest
    days = chart.policy.windows["new_headache_days"]
    if chart.days_ago(onset) > days:
        return known(False, f"headache began over {days} days ago", (ref,))
    new = known(True, f"headache began within {days} days", (ref,))
    return all_of(new, _high_risk(chart, onset))


def _high_risk(chart: Chart, onset: datetime) -> Finding:
    codes = chart.policy.code_sets
    age = chart.age_on(onset)
    limit = chart.policy.thresholds["new_headache_age_over"]
    if age is None:
        older = unknown("age at onset unknown", missing.BIRTH_DATE)
    else:
        older = known(age > limit, f"age at onset {age} ({'>' if age > limit else '<='} {limit})")
    cancer = chart.coded(codes["malignancy"])
    immune = chart.coded(codes["immunosuppression"])
    return any_of(
        older,
        known(bool(cancer), "active malignancy" if cancer else "", cancer),
        known(bool(immune), "HIV or immunosuppression" if immune else "", immune),
        pregnant(chart),
        _postpartum(chart),
    )


def _postpartum(chart: Chart) -> Finding:
    days = chart.policy.windows["postpartum_days"]
    recent = [
        c.ref
        for c in chart.conditions_with(chart.policy.code_sets["postpartum"])
        if chart.within_days(c.onset_or_recorded, days)
    ]
    return known(bool(recent), f"postpartum (within {days} days)" if recent else "", tuple(recent))


def vital_signs(chart: Chart) -> Finding:
    """2.3: any fever or severe hypertension reading in the 24 hours before now."""
    obs, limits = chart.policy.observations, chart.policy.thresholds
    days = chart.policy.windows["vitals_hours"] / 24
    checks = (
        ("temperature", limits["fever_celsius"], "temperature {:g} Cel"),
        ("systolic", limits["systolic_red_flag"], "systolic {:g} mmHg"),
        ("diastolic", limits["diastolic_red_flag"], "diastolic {:g} mmHg"),
    )
    found: list[str] = []
    evidence: list[str] = []
    for kind, limit, words in checks:
        for value, when, ref in chart.readings_of(obs[kind]):
            if value >= limit and chart.within_days(when, days):
                found.append(words.format(value))
                evidence.append(ref)
    if found:
        return known(True, "; ".join(found), tuple(dict.fromkeys(evidence)))
    return _NO_VITAL_SIGNS


_NO_VITAL_SIGNS = known(False, "no fever or severe hypertension in the last 24 hours")


def free_text_words(chart: Chart) -> Finding:
    """2.4: red-flag words in reasonCode.text, ServiceRequest.note or Condition.note."""
    texts = [(t.text, t.ref) for t in chart.facts.free_texts]
    for cond in chart.facts.conditions:
        for note in cond.notes:
            texts.append((note, cond.ref))
    found: list[str] = []
    evidence: list[str] = []
    for text, ref in texts:
        plain = " ".join(text.lower().split())
        hits = len(found)
        for word in chart.policy.free_text_words:
            if word in plain:
                found.append(word)
        if len(found) > hits:
            evidence.append(ref)
    if found:
        words = ", ".join(f'"{w}"' for w in dict.fromkeys(found))
        return known(True, f"red-flag words in free text: {words}", tuple(dict.fromkeys(evidence)))
    return _NO_WORDS


_NO_WORDS = known(False, "no red-flag words in free text")


def ed_exception(chart: Chart) -> Finding:
    """2.5: referred from an emergency department that attached final imaging within 7 days
    (radiology, CT or MR; final, amended or corrected: section 8 item 6)."""
    rules = chart.policy.ed_exception
    ed = [e.ref for e in chart.facts.encounters if e.class_code == rules["encounter_class"]]
    if not ed:
        return known(False, "not referred from an emergency department")
    days = chart.policy.windows["ed_imaging_days"]
    system, categories = rules["imaging_system"], rules["imaging_categories"]
    imaging: list[str] = []
    kinds: list[str] = []  # each report's category and status, as the reason names them
    for r in chart.facts.reports:
        if r.status not in rules["report_statuses"] or not chart.within_days(r.when, days):
            continue
        found = [c.code for c in r.categories if c.system == system and c.code in categories]
        if found:
            imaging.append(r.ref)
            kinds.append(f"{found[0]} {r.status}")
    if not imaging:
        return known(
            False, f"ED referral without final imaging report within {days} days", tuple(ed)
        )
    shown = ", ".join(dict.fromkeys(kinds))
    return Finding(
        MET,
        f"ED referral with imaging within {days} days ({shown}): a neurologist decides",
        tuple(dict.fromkeys(ed + imaging)),
    )
