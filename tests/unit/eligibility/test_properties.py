"""Properties the criteria imply for every referral, checked on generated referrals."""

from __future__ import annotations

import random
from collections.abc import Callable

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from referral_service.domain.eligibility import evaluate
from referral_service.fhir.facts import extract_facts
from referral_service.services.assessment.evaluation import evaluate_document

from .builders import ICD_OID, POLICY, RECEIVED, SCT, WHO, Referral

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
# Section 8 items 1-3 (kept apart from MODIFIERS, whose order seeds the golden decisions)
_EVERY_OTHER_DAY = {"timing": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}}
MEDICATION_RECORDS: list[Modifier] = [
    lambda r: r.prescription("amitriptyline", supply=(30, "d"), repeats=1),
    lambda r: r.prescription("venlafaxine", validity_days=90, reason="nausea"),
    lambda r: r.prescription("topiramate", status="active", validity_days=90, validity_end_days=5),
    lambda r: r.prescription("erenumab", status="on-hold"),
    lambda r: r.prescription("Paxlovid", status="active", named_by="bundle"),
    lambda r: r.prescription("Aimovig", status="cancelled"),
    lambda r: r.medication("Nurtec ODT", dosage=_EVERY_OTHER_DAY),
    lambda r: r.medication(
        "rimegepant", status="stopped", start_days=200, end_days=100, dosage=_EVERY_OTHER_DAY
    ),
    lambda r: r.medication("Eliquis 5 mg", named_by="contained"),
    lambda r: r.medication("timolol 0.5% eye drops", status="stopped", start_days=300, end_days=1),
    lambda r: r.medication("heparin flush"),
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

# Criteria revision 2026-12 (cc §8 items 8-11). Kept apart from the lists above, which also
# seed the golden decisions' random referrals: extending those would reshuffle every one.
REVISION_MODIFIERS: list[Modifier] = [
    lambda r: r.hcg("positive", 2),
    lambda r: r.hcg("negative", 2),
    lambda r: r.hcg("Negative", 3, specimen="serum", by="string"),
    lambda r: r.hcg("positive", 1, by="interpretation"),
    lambda r: r.condition("Z3A.20", recorded_days=20),
    lambda r: r.condition("77386006", SCT),
    lambda r: r.condition("I44.7"),
    lambda r: r.condition("I44.30"),
    lambda r: r.condition("G40.9", WHO),
    lambda r: r.condition("K26", WHO),
    lambda r: r.condition("I25.1", WHO),
    lambda r: r.condition("G43.3", WHO),
    lambda r: r.condition("G43.839"),
    lambda r: r.condition("G43.A1"),
    lambda r: r.condition("398057008", SCT),
]
REVISION_RED_FLAGS: list[Modifier] = [
    lambda r: r.condition("I60.9", WHO),
    lambda r: r.condition("H47.1", WHO),
    lambda r: r.reason_code("R56.9", WHO),
    lambda r: r.condition("G44.53", ICD_OID),
]
REVISION_HEADACHES = ["G43.839", "G43.A1", "G43.919", "G43.819"]


@st.composite
def referrals(draw: st.DrawFn, modifiers: list[Modifier] | None = None) -> Referral:
    modifiers = MODIFIERS + REVISION_MODIFIERS if modifiers is None else modifiers
    referral = Referral(
        age=draw(st.none() | st.integers(10, 90)),
        sex=draw(st.sampled_from(["male", "female"])),
        headache=draw(st.sampled_from(HEADACHES + REVISION_HEADACHES)),
        headache_onset_days=draw(st.none() | st.integers(100, 3000)),
        metrics=draw(st.booleans()),
    )
    for index in draw(st.lists(st.integers(0, len(modifiers) - 1), max_size=5, unique=True)):
        modifiers[index](referral)
    return referral


WITH_RECORDS = MODIFIERS + MEDICATION_RECORDS


_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


@_SETTINGS
@given(referral=referrals(), flag=st.sampled_from(RED_FLAGS + REVISION_RED_FLAGS))
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
    _remove_entries(referral, seed)


def _remove_entries(referral: Referral, seed: int) -> None:
    assume(referral.evaluate().decision == "needs-information")
    rng = random.Random(seed)
    for _ in range(3):
        if not referral.entries:
            break
        referral.entries.pop(rng.randrange(len(referral.entries)))
        assert referral.evaluate().decision != "eligible"


# References the ServiceRequest makes to nothing in hand (criteria section 8 item 13)
UNREADABLE: list[Modifier] = [
    lambda r: r.dangling("Condition/gone", "reasonReference"),
    lambda r: r.dangling("urn:uuid:gone", "reasonReference"),
    lambda r: r.dangling("urn:uuid:gone"),
    lambda r: r.dangling("#gone"),
    lambda r: r.dangling("Observation/gone"),
    lambda r: r.dangling("MedicationStatement/gone"),
    lambda r: r.dangling("Encounter/gone", "encounter"),
    lambda r: r.dangling("DiagnosticReport/gone"),
]


@_SETTINGS
@given(
    referral=referrals(),
    dangling=st.lists(st.sampled_from(UNREADABLE), min_size=1, max_size=3),
    flag=st.sampled_from(RED_FLAGS),
)
def test_an_unresolvable_reference_never_hides_a_red_flag(
    referral: Referral, dangling: list[Modifier], flag: Modifier
) -> None:
    for modifier in dangling:
        modifier(referral)
    assert flag(referral).evaluate().decision == "emergency-redirect"


@_SETTINGS
@given(referral=referrals(), dangling=st.sampled_from(UNREADABLE))
def test_an_unresolvable_reference_never_makes_a_referral_eligible(
    referral: Referral, dangling: Modifier
) -> None:
    """It is missing data: a referral that is not eligible stays so, and what it settles only
    becomes unknown (needs-information may take the place of ineligible, never the reverse)."""
    before = referral.evaluate().decision
    after = dangling(referral).evaluate().decision
    if before != "eligible":
        assert after != "eligible"
    if before == "needs-information":
        assert after == "needs-information"


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


@_SETTINGS
@given(referral=referrals(WITH_RECORDS), flag=st.sampled_from(RED_FLAGS))
def test_no_medication_record_hides_a_red_flag(referral: Referral, flag: Modifier) -> None:
    assume(referral.evaluate().decision == "eligible")
    assert flag(referral).evaluate().decision == "emergency-redirect"


@_SETTINGS
@given(referral=referrals(WITH_RECORDS), seed=st.integers(0, 10_000))
def test_removing_medication_records_never_turns_needs_information_into_eligible(
    referral: Referral, seed: int
) -> None:
    _remove_entries(referral, seed)
