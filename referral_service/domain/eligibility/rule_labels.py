"""Each rule of the eligibility engine in the clinic's words (clinical-criteria.md), for the
people who read a decision: the staff console and API show the label beside the rule id."""

from __future__ import annotations

RULES = {
    "red-flag.coded-finding": "Red-flag diagnosis (SNNOOP10): send to the emergency department",
    "red-flag.new-headache-high-risk": (
        "New headache in a high-risk patient (over 50 at onset, cancer, HIV or"
        " immunosuppression, pregnancy or just after birth)"
    ),
    "red-flag.vital-signs": "Fever or severe hypertension in the last 24 hours",
    "red-flag.free-text": "Warning words in the referral's text (thunderclap, neck stiffness ...)",
    "red-flag.ed-exception": (
        "Sent by an emergency department with recent imaging: a neurologist decides"
    ),
    "age.adult": "Adult patient (the clinic treats adults; children go to paediatric neurology)",
    "headache.coded": "A headache diagnosis is coded",
    "review.category": "A headache type a neurologist decides on (cluster, tension-type, NDPH)",
    "review.pregnancy": "Pregnancy: a neurologist decides",
    "review.free-text": "Warning words in the referral's text: a neurologist reads them",
    "review.relative-contraindication": (
        "A caution for a drug of the infusion: a neurologist decides"
    ),
    "pregnancy-status.recent": "A recent pregnancy status before DHE or valproate",
    "protocol.requested": "The infusion the referrer asked for",
    "protocol.fallback": "DHE not possible or not yet: the standard infusion instead",
    "eptinezumab.criteria": (
        "Eptinezumab criteria (adult, 4 or more migraine days a month, 2 or more preventive"
        " classes failed, no current CGRP preventive)"
    ),
    "earliest-start.triptan-washout": "No DHE within 24 hours of a triptan or ergot",
    "staff-review": "A clinician's review",
}

CATEGORIES = {
    "status-migrainosus": "Status migrainosus (a migraine attack lasting over 72 hours)",
    "refractory-migraine": "Refractory migraine (intractable, or 3 or more preventives failed)",
    "medication-overuse": "Medication-overuse headache",
    "chronic-migraine": "Chronic migraine (15 or more headache days a month, 8 of them migraine)",
    "chronic-cluster": "Chronic cluster headache",
    "chronic-tension-type": "Chronic tension-type headache",
    "ndph": "New daily persistent headache",
    "episodic": "Episodic migraine or other headache",
}

DRUGS = {
    "iv-fluids": "IV fluids",
    "metoclopramide": "metoclopramide",
    "diphenhydramine": "diphenhydramine",
    "magnesium-sulfate": "magnesium sulfate",
    "ketorolac": "ketorolac",
    "dexamethasone": "dexamethasone",
    "dhe": "DHE (dihydroergotamine)",
    "valproate": "valproate",
    "eptinezumab": "eptinezumab",
}


def rule_label(rule: str) -> str:
    """The rule in plain words; a rule id this module does not know is shown as it is."""
    if rule in RULES:
        return RULES[rule]
    kind, _, name = rule.partition(".")
    if kind == "category":
        return "Headache type: " + CATEGORIES.get(name, name.replace("-", " "))
    if kind == "exclusion":
        return f"Something that rules out {DRUGS.get(name, name.replace('-', ' '))}"
    if kind == "caution":
        return f"A caution for {DRUGS.get(name, name.replace('-', ' '))}: a neurologist decides"
    return rule
