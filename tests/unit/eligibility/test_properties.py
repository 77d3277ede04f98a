"""Properties the criteria imply for every referral, checked on generated referrals."""

from __future__ import annotations

import random
from collections.abc import Callable

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from referral_service.domain.eligibility import evaluate
from referral_service.fhir.facts import extract_facts
from referral_service.services.assessment.evaluation import evaluate_document

from .builders import POLICY, RECEIVED, Referral

Modifier = Callable[[Referral], Referral]

MODIFIERS: list[Modifier] = [
    lambda r: r.protocol("dhe"),
    lambda r: r.protocol("eptinezumab"),
    lambda r: r.protocol("standard-infusion"),
    lambda r: r.priority("urgent"),
    lambda r: r.egfr(25),
    lambda r: r.egfr(45),
    lambda r: r.egfr(90),
    lambda r: r.acute(triptan=12),
    lambda r: r.acute(simple_analgesic=6, opioid=5),
    lambda r: r.metric("debilitating-headache-days-per-month", 9),
    lambda r: r.metric("migraine-days-per-month", 5),
    lambda r: r.failed_preventive("propranolol", "8787"),
    lambda r: r.failed_preventive("topiramate", "38404"),
    lambda r: r.failed_preventive("Amitriptyline"),
    lambda r: r.medication("erenumab"),
    lambda r: r.medication("apixaban"),
    lambda r: r.medication("ritonavir"),
    lambda r: r.condition("I25.10"),
    lambda r: r.condition("G40.909"),
    lambda r: r.condition("G20"),
    lambda r: r.condition("K25.9"),
    lambda r: r.condition("Z86.73"),
    lambda r: r.condition("G44.41"),
    lambda r: r.pregnancy_status("not-pregnant", 2),
    lambda r: r.pregnancy_status("pregnant", 2),
    lambda r: r.blood_pressure(165, 95, days=3),
    lambda r: r.medication("sumatriptan", rxnorm="37418", status="completed", taken_hours=5),
    lambda r: r.allergy("eptinezumab"),
    lambda r: r.note("patient prefers mornings"),
]
RED_FLAGS: list[Modifier] = [
    lambda r: r.condition("G44.53"),
    lambda r: r.condition("95660002", "http://snomed.info/sct"),
    lambda r: r.condition("I61.9", onset_days=10),
    lambda r: r.condition("G03.9"),
    lambda r: r.reason_code("M31.5"),
    lambda r: r.temperature(38.5),
    lambda r: r.temperature(101.2, "[degF]"),
    lambda r: r.blood_pressure(185, 100),
    lambda r: r.blood_pressure(150, 125),
    lambda r: r.condition("R56.9", recorded_days=3),
]
HEADACHES = [
    "G43.709",
    "G43.909",
    "G43.719",
    "G43.701",
    "G44.41",
    "G44.221",
    "R51.9",
    "G44.52",
    None,
]


@st.composite
def referrals(draw: st.DrawFn) -> Referral:
    referral = Referral(
        age=draw(st.none() | st.integers(10, 90)),
        sex=draw(st.sampled_from(["male", "female"])),
        headache=draw(st.sampled_from(HEADACHES)),
        headache_onset_days=draw(st.none() | st.integers(100, 3000)),
        metrics=draw(st.booleans()),
    )
    for index in draw(st.lists(st.integers(0, len(MODIFIERS) - 1), max_size=5, unique=True)):
        MODIFIERS[index](referral)
    return referral


_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


@_SETTINGS
@given(referral=referrals(), flag=st.sampled_from(RED_FLAGS))
def test_a_red_flag_turns_any_eligible_referral_into_an_emergency_redirect(
    referral: Referral, flag: Modifier
) -> None:
    assume(referral.evaluate().decision == "eligible")
    assert flag(referral).evaluate().decision == "emergency-redirect"


@_SETTINGS
@given(referral=referrals(), seed=st.integers(0, 10_000))
def test_removing_data_never_turns_needs_information_into_eligible(
    referral: Referral, seed: int
) -> None:
    assume(referral.evaluate().decision == "needs-information")
    rng = random.Random(seed)
    for _ in range(3):
        if not referral.entries:
            break
        referral.entries.pop(rng.randrange(len(referral.entries)))
        assert referral.evaluate().decision != "eligible"


@_SETTINGS
@given(referral=referrals(), seed=st.integers(0, 10_000))
def test_evaluation_is_deterministic_and_ignores_entry_order(referral: Referral, seed: int) -> None:
    bundle = referral.bundle()
    request, others = bundle["entry"][0]["resource"], bundle["entry"][1:]
    facts = extract_facts(request, bundle_resources=others, resolver=None, received_at=RECEIVED)
    first = evaluate(facts, POLICY)
    assert evaluate(facts, POLICY).to_dict() == first.to_dict()
    random.Random(seed).shuffle(bundle["entry"])
    shuffled = evaluate_document(bundle, policy=POLICY, received_at=RECEIVED)
    assert (
        shuffled.decision,
        shuffled.category,
        shuffled.protocol,
        shuffled.priority,
        sorted(shuffled.excluded_drugs),
        shuffled.earliest_start,
    ) == (
        first.decision,
        first.category,
        first.protocol,
        first.priority,
        sorted(first.excluded_drugs),
        first.earliest_start,
    )
