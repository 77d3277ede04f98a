"""The referral form's answers as facts: the same numbers as form answers or as coded
Observations give the same decision (a table), and what the form settles."""

from __future__ import annotations

from typing import Any

import pytest

from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.form_items import items_for, settles
from referral_service.domain.policy import load_policy
from referral_service.services.assessment.evaluation import evaluate_document
from tests.support.form_answers import answer, frequency, group, pregnancy, preventive, response
from tests.support.referrals import ICD10, METRICS, metric, service_request

POLICY = load_policy()


def bare(code: str = "G43.909") -> dict[str, Any]:
    """An ED referral: one ICD-10 code, a woman of 46, nothing else."""
    return service_request(
        reasonCode=[{"coding": [{"system": ICD10, "code": code}]}],
    )


def as_observations(
    code: str, headache: int | None, migraine: int | None, acute: dict[str, int], months: int
) -> dict[str, Any]:
    request = bare(code)
    start = {3: "2026-08-25", 6: "2026-05-27", 1: "2026-10-24"}[months]
    end = "2026-11-23"
    found = []
    if headache is not None:
        found.append(metric("headache-days-per-month", headache, start, end, ident="hd"))
    if migraine is not None:
        found.append(metric("migraine-days-per-month", migraine, start, end, ident="md"))
    if acute:
        found.append(
            {
                "resourceType": "Observation",
                "id": "acute",
                "status": "final",
                "code": {
                    "coding": [{"system": METRICS, "code": "acute-medication-days-per-month"}]
                },
                "subject": {"reference": "#patient"},
                "effectivePeriod": {"start": "2026-10-24", "end": end},
                "valueInteger": sum(acute.values()),
                "component": [
                    {
                        "code": {"coding": [{"system": METRICS, "code": k}]},
                        "valueInteger": v,
                    }
                    for k, v in acute.items()
                ],
            }
        )
    found.append(
        {
            "resourceType": "Observation",
            "id": "preg",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
            "subject": {"reference": "#patient"},
            "effectiveDateTime": "2026-11-22T00:00:00Z",
            "valueCodeableConcept": {
                "coding": [{"system": "http://snomed.info/sct", "code": "60001007"}]
            },
        }
    )
    request["contained"] += found
    request["supportingInfo"] = [{"reference": f"#{o['id']}"} for o in found]
    return request


def as_form(
    code: str, headache: int | None, migraine: int | None, acute: dict[str, int], months: int
) -> dict[str, Any]:
    answers = response(
        frequency(headache, migraine, months),
        group("acute-medication", *(answer(f"acute-{k}-days", v) for k, v in acute.items())),
        pregnancy(),
        id="qr1",
    )
    if not acute:
        answers["item"].pop(1)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": bare(code)},
            {"fullUrl": "QuestionnaireResponse/qr1", "resource": answers},
        ],
    }


TABLE = [
    ("G43.909", 20, 12, {}, 6),
    ("G43.909", 20, 6, {}, 6),
    ("G43.909", 10, 8, {}, 6),
    ("G43.909", 16, 9, {}, 1),
    ("G43.909", 20, 12, {"triptan": 12}, 3),
    ("G43.909", 20, 12, {"triptan": 6, "opioid": 5}, 3),
    ("G43.909", 18, 10, {"simple-analgesic": 9}, 6),
    ("G44.229", 20, None, {}, 6),
    ("R51.9", 25, None, {}, 6),
    ("G43.909", 4, 2, {}, 6),
]


@pytest.mark.parametrize(("code", "headache", "migraine", "acute", "months"), TABLE)
def test_the_same_numbers_either_way_give_the_same_decision(
    code: str, headache: int, migraine: int | None, acute: dict[str, int], months: int
) -> None:
    coded = evaluate_document(
        as_observations(code, headache, migraine, acute, months), policy=POLICY
    )
    answered = evaluate_document(as_form(code, headache, migraine, acute, months), policy=POLICY)
    assert (answered.decision, answered.category, answered.protocol) == (
        coded.decision,
        coded.category,
        coded.protocol,
    )
    assert [(r.rule, r.outcome) for r in answered.reasons] == [
        (r.rule, r.outcome) for r in coded.reasons
    ]
    assert set(answered.missing) == set(coded.missing)


def test_the_table_covers_more_than_one_decision() -> None:
    decisions = {evaluate_document(as_form(*row), policy=POLICY).decision for row in TABLE}
    assert {"eligible", "needs-information", "needs-review"} <= decisions


def test_a_bare_referral_needs_information_and_the_form_answers_settle_it() -> None:
    before = evaluate_document(bare(), policy=POLICY)
    assert before.decision == "needs-information"
    after = evaluate_document(as_form("G43.909", 20, 12, {}, 6), policy=POLICY)
    assert after.decision == "eligible"
    assert after.category == "chronic-migraine"
    cited = {ref for r in after.reasons for ref in r.evidence}
    assert "QuestionnaireResponse/qr1" in cited


def test_midas_three_month_count_is_a_monthly_rate_over_three_months() -> None:
    answers = response(
        group(
            "frequency", answer("headache-days-3-months", 60), answer("migraine-days-per-month", 12)
        ),
        pregnancy(),
        id="qr1",
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": bare()},
            {"fullUrl": "QuestionnaireResponse/qr1", "resource": answers},
        ],
    }
    decision = evaluate_document(bundle, policy=POLICY)
    assert decision.category == "chronic-migraine"  # 60 in 3 months is 20 a month, for 90 days


def test_preventives_stopped_for_lack_of_effect_or_side_effects_count_as_failed() -> None:
    answers = response(
        frequency(20, 12, 6, debilitating=10),
        {"linkId": "preventive", "item": preventive("topiramate", 3, "side-effects")["item"]},
        preventive("propranolol", 4, "lack-of-effect"),
        preventive("amitriptyline", 3, "lack-of-effect"),
        preventive("candesartan", 1, "still-taking"),
        pregnancy(),
        id="qr1",
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": bare()},
            {"fullUrl": "QuestionnaireResponse/qr1", "resource": answers},
        ],
    }
    decision = evaluate_document(bundle, policy=POLICY)
    refractory = next(r for r in decision.reasons if r.rule == "category.refractory-migraine")
    assert "3 failed preventive classes" in refractory.detail
    assert "QuestionnaireResponse/qr1" in refractory.evidence


def test_a_yes_to_a_red_flag_question_redirects_to_the_emergency_department() -> None:
    answers = response(group("red-flags", answer("red-flag-thunderclap", True)), id="qr1")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": bare()},
            {"fullUrl": "QuestionnaireResponse/qr1", "resource": answers},
        ],
    }
    assert evaluate_document(bundle, policy=POLICY).decision == "emergency-redirect"


def test_an_answer_to_another_questionnaire_is_not_read() -> None:
    answers = response(
        frequency(20, 12, 6),
        pregnancy(),
        id="qr1",
        questionnaire="https://elsewhere.example/Questionnaire/x",
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": bare()},
            {"fullUrl": "QuestionnaireResponse/qr1", "resource": answers},
        ],
    }
    assert evaluate_document(bundle, policy=POLICY).decision == "needs-information"


def test_each_missing_item_has_form_items_that_settle_it() -> None:
    form = POLICY.form
    assert form is not None
    days = POLICY.windows["pregnancy_test_days"]
    for wanted in (
        missing.HEADACHE_DAYS,
        missing.MIGRAINE_DAYS,
        missing.DEBILITATING_DAYS,
        missing.DURATION,
        missing.PREVENTIVES,
        missing.ACUTE_MEDICATION,
        missing.PREGNANCY_STATUS.format(days=days),
    ):
        assert items_for(form, wanted, days), wanted
    assert items_for(form, missing.BIRTH_DATE, days) == ()


def test_the_items_for_a_missing_item_are_the_forms_own_that_settle_it_in_its_order() -> None:
    """items_for answers from an index of the form built once; it says what a scan of the
    form's items says, for any window (a new window builds the index again)."""
    form = POLICY.form
    assert form is not None
    for days in (POLICY.windows["pregnancy_test_days"], 3, POLICY.windows["pregnancy_test_days"]):
        every = {item for link in form.items for item in settles(form, link, days)}
        assert missing.PREGNANCY_STATUS.format(days=days) in every
        for wanted in every | {missing.BIRTH_DATE}:
            scan = tuple(link for link in form.items if wanted in settles(form, link, days))
            assert items_for(form, wanted, days) == scan, (wanted, days)
