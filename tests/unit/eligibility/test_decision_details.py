"""What a decision says besides its verdict: missing data, evidence, earliest start, ids."""

from __future__ import annotations

from datetime import timedelta

import pytest

from referral_service.services.assessment.evaluation import UnreadableReferral, evaluate_document

from .builders import NOW, POLICY, RECEIVED, Referral, reason


def test_earliest_start_is_24_hours_after_a_recent_triptan_for_dhe() -> None:
    decision = (
        Referral()
        .protocol("dhe")
        .medication(
            "sumatriptan",
            rxnorm="37418",
            status="completed",
            kind="MedicationAdministration",
            taken_hours=10,
        )
        .evaluate()
    )
    assert decision.decision == "eligible"
    assert decision.earliest_start == NOW - timedelta(hours=10) + timedelta(hours=24)
    assert reason(decision, "earliest-start.triptan-washout").outcome == "met"


def test_ergot_statement_with_effective_date_time_counts() -> None:
    decision = (
        Referral()
        .protocol("dhe")
        .medication("Ergotamine tartrate", status="completed", taken_hours=2)
        .evaluate()
    )
    assert decision.earliest_start == NOW + timedelta(hours=22)


def test_triptan_25_hours_ago_sets_no_earliest_start() -> None:
    decision = (
        Referral()
        .protocol("dhe")
        .medication("sumatriptan", rxnorm="37418", status="completed", taken_hours=25)
        .evaluate()
    )
    assert decision.protocol == "dhe"
    assert decision.earliest_start is None


def test_recent_triptan_does_not_delay_standard_infusion() -> None:
    decision = (
        Referral()
        .medication("sumatriptan", rxnorm="37418", status="completed", taken_hours=3)
        .evaluate()
    )
    assert decision.protocol == "standard-infusion"
    assert decision.earliest_start is None


def test_triptan_delay_follows_fallback_away_from_dhe() -> None:
    decision = (
        Referral()
        .protocol("dhe")
        .condition("I25.10")
        .medication("sumatriptan", rxnorm="37418", status="completed", taken_hours=3)
        .evaluate()
    )
    assert (decision.protocol, decision.earliest_start) == ("standard-infusion", None)


def test_missing_names_the_metrics_in_words_a_referrer_can_act_on() -> None:
    decision = Referral(headache="G43.909", metrics=False).evaluate()
    assert decision.decision == "needs-information"
    text = " ".join(decision.missing)
    assert "headache days per month" in text
    assert "migraine days per month" in text
    assert all(m[0].islower() and len(m) > 20 for m in decision.missing)


def test_missing_birth_date_is_named() -> None:
    decision = Referral(age=None).evaluate()
    assert decision.decision == "needs-information"
    assert any("birth date" in m for m in decision.missing)


def test_missing_pregnancy_status_is_named() -> None:
    decision = Referral(sex="female", age=30).protocol("dhe").evaluate()
    assert decision.decision == "needs-information"
    assert any("pregnancy status" in m and "7 days" in m for m in decision.missing)


def test_eligible_decision_reports_no_unknown_rule_without_missing_data() -> None:
    decision = Referral().evaluate()
    unknown = [r for r in decision.reasons if r.outcome == "unknown"]
    assert bool(unknown) == bool(decision.missing)


def test_evidence_points_at_the_resources_that_settled_a_rule() -> None:
    decision = Referral().condition("G44.53", key="tc").evaluate()
    assert reason(decision, "red-flag.coded-finding").evidence == ("urn:uuid:tc",)


def test_contained_and_type_id_evidence() -> None:
    contained = Referral().condition("G44.53", via="contained", key="c9").evaluate()
    assert reason(contained, "red-flag.coded-finding").evidence == ("#c9",)
    typed = Referral().condition("G44.53", via="bundle-id", key="c7").evaluate()
    assert reason(typed, "red-flag.coded-finding").evidence == ("Condition/c7",)
    remote = Referral().condition("G44.53", via="resolver", key="c5").evaluate()
    assert reason(remote, "red-flag.coded-finding").evidence == ("Condition/c5",)


def test_reason_code_red_flag_cites_the_service_request() -> None:
    decision = Referral().reason_code("G44.53").evaluate()
    assert reason(decision, "red-flag.coded-finding").evidence == ("ServiceRequest/sr-1",)


def test_every_rule_that_ran_has_an_outcome_and_a_detail() -> None:
    decision = Referral().protocol("dhe").egfr(45).evaluate()
    assert decision.reasons
    for r in decision.reasons:
        assert r.outcome in ("met", "not-met", "unknown")
        assert r.detail and r.detail != r.rule


def test_first_match_decides_so_later_rules_do_not_run() -> None:
    decision = Referral().condition("G44.53").evaluate()
    rules = {r.rule for r in decision.reasons}
    assert "age.adult" not in rules and not any(r.startswith("category.") for r in rules)


def test_fallback_reason_names_the_exclusion() -> None:
    decision = Referral().protocol("dhe").condition("I21.9", onset_days=400).evaluate()
    assert reason(decision, "exclusion.dhe").outcome == "met"
    assert "ischaemic heart disease" in reason(decision, "exclusion.dhe").detail
    assert "falls back" in reason(decision, "protocol.fallback").detail


def test_latest_metric_wins() -> None:
    referral = Referral(headache="G43.909", metrics=False)
    referral.metric("headache-days-per-month", 20, end_days=30)
    referral.metric("headache-days-per-month", 10, end_days=1)
    referral.metric("migraine-days-per-month", 9).metric("debilitating-headache-days-per-month", 2)
    decision = referral.acute(triptan=2).evaluate()
    assert (decision.decision, decision.category) == ("ineligible", "episodic")


def test_now_is_authored_on_else_receipt() -> None:
    referral = Referral().temperature(39, hours=30)
    assert referral.evaluate().decision == "eligible"  # 30 h before authoredOn
    bundle = referral.bundle()
    del bundle["entry"][0]["resource"]["authoredOn"]
    at_receipt = evaluate_document(bundle, policy=POLICY, received_at=NOW - timedelta(hours=10))
    assert at_receipt.decision == "emergency-redirect"
    later = evaluate_document(bundle, policy=POLICY, received_at=RECEIVED)
    assert later.decision == "eligible"


def test_referral_label_and_policy_version() -> None:
    decision = Referral().evaluate()
    assert decision.referral == "urn:clinic|REF-1"
    assert decision.policy_version == POLICY.version
    bundle = Referral().bundle()
    del bundle["entry"][0]["resource"]["identifier"]
    assert evaluate_document(bundle, policy=POLICY, received_at=RECEIVED).referral == "sr-1"


def test_a_bare_service_request_with_contained_resources() -> None:
    referral = Referral(headache=None, metrics=False)
    referral.condition("G43.709", onset_days=700, via="contained")
    referral.metric("headache-days-per-month", 20, via="contained")
    referral.metric("migraine-days-per-month", 12, via="contained")
    request = referral.bundle()["entry"][0]["resource"]
    request["contained"].append(
        {"resourceType": "Patient", "id": "pt", "birthDate": "1980-01-01", "gender": "male"}
    )
    request["subject"] = {"reference": "#pt"}
    decision = evaluate_document(request, policy=POLICY, received_at=RECEIVED)
    assert (decision.decision, decision.category) == ("eligible", "chronic-migraine")


@pytest.mark.parametrize(
    "document",
    [
        {"resourceType": "Patient"},
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "entry": "nope"},
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"resource": {"resourceType": "ServiceRequest"}},
                {"resource": {"resourceType": "ServiceRequest"}},
            ],
        },
        ["not", "an", "object"],
    ],
)
def test_unreadable_documents(document: object) -> None:
    with pytest.raises(UnreadableReferral):
        evaluate_document(document, policy=POLICY, received_at=RECEIVED)  # type: ignore[arg-type]


def test_any_bundle_type_holding_one_service_request() -> None:
    bundle = Referral().bundle()
    for kind in ("collection", "batch", "document", "message"):
        bundle["type"] = kind
        assert evaluate_document(bundle, policy=POLICY, received_at=RECEIVED).decision == (
            "eligible"
        )


def test_simultaneous_egfr_readings_take_the_worse_whatever_the_order() -> None:
    # Found by the entry-order property: the tie used to go to whichever came first.
    for values in ((25, 70), (70, 25)):
        referral = Referral()
        for value in values:
            referral.egfr(value, days=5)
        assert "ketorolac" in referral.evaluate().excluded_drugs


def test_simultaneous_pregnancy_statuses_take_pregnant() -> None:
    for answers in (("pregnant", "not-pregnant"), ("not-pregnant", "pregnant")):
        referral = Referral(sex="female", age=30)
        for answer in answers:
            referral.pregnancy_status(answer, 2)
        assert referral.evaluate().decision == "needs-review"


def test_ed_exception_from_the_bundles_encounter_without_a_reference() -> None:
    referral = Referral().condition("G44.53").from_emergency()
    del referral.request["encounter"]
    assert referral.evaluate().decision == "needs-review"


def test_emergency_redirect_names_no_category_or_protocol() -> None:
    decision = Referral().protocol("dhe").temperature(39.5).evaluate()
    assert (decision.decision, decision.category, decision.protocol, decision.earliest_start) == (
        "emergency-redirect",
        "none",
        None,
        None,
    )
    assert "temperature 39.5 Cel" in reason(decision, "red-flag.vital-signs").detail


def test_eptinezumab_allergy_reports_no_protocol() -> None:
    decision = (
        Referral()
        .protocol("eptinezumab")
        .failed_preventive("propranolol", "8787")
        .failed_preventive("topiramate", "38404")
        .allergy("Eptinezumab-jjmr")
        .evaluate()
    )
    assert (decision.decision, decision.protocol, decision.excluded_drugs) == (
        "ineligible",
        None,
        (),
    )


def test_ed_exception_review_still_reports_category_and_protocol() -> None:
    decision = Referral().protocol("dhe").condition("G44.53").from_emergency().evaluate()
    assert (decision.decision, decision.category, decision.protocol) == (
        "needs-review",
        "chronic-migraine",
        "dhe",
    )
    assert reason(decision, "red-flag.ed-exception").outcome == "met"
    ineligible_later = Referral(age=17).condition("G44.53").from_emergency().evaluate()
    assert ineligible_later.decision == "needs-review"  # step 1 decides


def test_review_never_reports_an_excluded_protocol() -> None:
    decision = (
        Referral(sex="female", age=30)
        .protocol("eptinezumab")
        .condition("Z33.1")
        .allergy("eptinezumab")
        .evaluate()
    )
    assert (decision.decision, decision.protocol) == ("needs-review", None)
    assert reason(decision, "exclusion.eptinezumab").outcome == "met"


def test_free_text_is_recorded_at_step_1_and_overrides_every_later_step() -> None:
    """Section 8 item 5 (was: decides only at step 5, so an under-18 stayed ineligible)."""
    decision = Referral().note("sudden onset last week").evaluate()
    assert reason(decision, "red-flag.free-text").outcome == "met"
    assert reason(decision, "review.free-text").outcome == "met"
    early = Referral(age=17).note("sudden onset").evaluate()
    assert (early.decision, early.category, early.protocol) == ("needs-review", "none", None)
    assert reason(early, "red-flag.free-text").outcome == "met"
    assert reason(early, "age.adult").outcome == "not-met"
    override = reason(early, "review.free-text")
    assert override.outcome == "met"
    assert override.detail == (
        'red-flag words in free text: "sudden onset": a clinician reads them'
        " (it would otherwise be ineligible)"
    )


def test_a_category_protocol_waiting_for_a_pregnancy_status_gives_way_to_the_default() -> None:
    """Medication overuse would get DHE, which waits for a pregnancy status; chronic migraine is
    met too, so the standard infusion is planned now and the status is asked for."""
    decision = Referral(sex="female", age=30).condition("G44.41").evaluate()
    assert (decision.decision, decision.protocol) == ("eligible", "standard-infusion")
    assert decision.category == "medication-overuse"
    fallback = reason(decision, "protocol.fallback")
    assert "dhe (chosen by category, not requested) waits for a pregnancy status" in fallback.detail
    assert any("pregnancy status" in item for item in decision.missing)
    # With the status, the category's own protocol.
    with_status = (
        Referral(sex="female", age=30)
        .condition("G44.41")
        .pregnancy_status("not-pregnant", 2)
        .evaluate()
    )
    assert (with_status.decision, with_status.protocol) == ("eligible", "dhe")


@pytest.mark.parametrize(
    ("referral", "detail"),
    [
        (
            Referral().condition("R41.82", recorded_days=2),
            "altered consciousness (altered mental status R41.82 recorded 2 days ago)",
        ),
        (
            Referral().condition("R41.0", onset_days=1, recorded_days=0.5),
            "altered consciousness (disorientation R41.0 began 1 day ago)",
        ),
        (
            Referral().condition("R41.0", onset_days=0.2),
            "altered consciousness (disorientation R41.0 began today)",
        ),
        (
            Referral().condition("R41.82"),
            "altered consciousness (altered mental status R41.82 with no date)",
        ),
        (
            Referral().reason_code("R4182"),
            "altered consciousness (altered mental status R41.82 in the referral's reasons)",
        ),
        (Referral().condition("R40.20", onset_days=3), "altered consciousness"),
        (
            Referral().condition("R40.4", onset_days=3).condition("G44.53"),
            "thunderclap headache, altered consciousness",
        ),
    ],
)
def test_altered_consciousness_names_the_ed_code_and_its_date(
    referral: Referral, detail: str
) -> None:
    """Criteria section 8 item 4: the reason names R41.82 / R41.0 in plain words."""
    decision = referral.evaluate()
    assert decision.decision == "emergency-redirect"
    assert reason(decision, "red-flag.coded-finding").detail == "red-flag finding: " + detail


def test_an_ed_imaging_report_about_the_patient_the_ehrs_way_is_attached() -> None:
    """Section 8 item 6: any Bundle entry is attached, even one whose subject names the patient
    by a reference the Bundle's Patient does not carry; the reason cites it."""
    decision = (
        Referral()
        .condition("G44.53")
        .from_emergency(referenced=False, imaging_subject="Patient/ehr-4711", category="CT")
        .evaluate()
    )
    assert decision.decision == "needs-review"
    exception = reason(decision, "red-flag.ed-exception")
    assert exception.outcome == "met"
    assert exception.detail == (
        "ED referral with imaging within 7 days (CT final): a neurologist decides"
    )
    assert any(ref.startswith("urn:uuid:r") for ref in exception.evidence)


def test_a_warning_word_after_the_category_step_reports_the_category() -> None:
    """Clarification 14(f): the category only when the engine reached the category step."""
    reached = Referral(headache="G43.909", metrics=False).note("confusion").evaluate()
    assert (reached.decision, reached.category) == ("needs-review", "episodic")
    assert any("headache days" in item for item in reached.missing)
    not_reached = Referral(age=None).note("confusion").evaluate()
    assert (not_reached.decision, not_reached.category) == ("needs-review", "none")
    assert not [r for r in not_reached.reasons if r.rule.startswith("category.")]
    assert any("birth date" in item for item in not_reached.missing)


def test_an_unresolvable_reference_is_named_in_missing() -> None:
    """Section 8 item 13: the rules that may have needed it say so, and `missing` asks for it."""
    decision = (
        Referral(headache=None)
        .condition("I10")
        .dangling("Condition/gone", "reasonReference")
        .evaluate()
    )
    assert decision.decision == "needs-information"
    assert reason(decision, "headache.coded").detail == (
        "no headache diagnosis code; Condition/gone could not be read"
    )
    assert decision.missing[0] == (
        "the resource at Condition/gone, referenced but not readable (send it in the referral's"
        " Bundle)"
    )


def test_the_ed_exception_names_each_reports_category_and_status() -> None:
    referral = Referral().condition("G44.53").from_emergency(status="amended", category="NMR")
    referral.from_emergency(imaging_days=3)
    exception = reason(referral.evaluate(), "red-flag.ed-exception")
    assert exception.detail == (
        "ED referral with imaging within 7 days (NMR amended, RAD final): a neurologist decides"
    )
    assert len(exception.evidence) == 3  # the Encounter (once) and both reports


def test_pregnancy_evidence_is_named_in_plain_words() -> None:
    """cc §8 item 10: an hCG result or a pregnancy Condition says what it is and when."""
    tested = Referral(sex="female", age=30).protocol("dhe").hcg("negative", 2).evaluate()
    status = reason(tested, "pregnancy-status.recent")
    assert status.detail == (
        "pregnancy status within 7 days: not-pregnant (negative urine hCG 2 days ago)"
    )
    assert len(status.evidence) == 1 and status.evidence[0].startswith("urn:uuid:")
    coded = Referral(sex="female", age=30).condition("Z3A.20", recorded_days=10).evaluate()
    assert reason(coded, "review.pregnancy").detail == (
        "pregnancy status: pregnant (Condition Z3A.20 10 days ago)"
    )
    serum = Referral(sex="female", age=30).hcg("POSITIVE", specimen="serum", by="string")
    assert reason(serum.evaluate(), "review.pregnancy").detail == (
        "pregnancy status: pregnant (positive serum hCG 1 day ago)"
    )


def test_a_pregnancy_status_observation_keeps_its_plain_wording() -> None:
    decision = Referral(sex="female", age=30).protocol("dhe").pregnancy_status("not-pregnant")
    assert reason(decision.evaluate(), "pregnancy-status.recent").detail == (
        "pregnancy status within 7 days: not-pregnant"
    )


def test_simultaneous_hcg_results_take_positive_whatever_the_order() -> None:
    for results in (("positive", "negative"), ("negative", "positive")):
        referral = Referral(sex="female", age=30)
        for result in results:
            referral.hcg(result, 2)
        assert referral.evaluate().decision == "needs-review"


def test_an_hcg_result_whose_parts_disagree_is_positive() -> None:
    referral = Referral(sex="female", age=30).protocol("dhe").hcg("negative", 1)
    referral.entries[-1]["resource"]["interpretation"] = [
        {"coding": [{"code": "POS"}]}  # the coded answer says negative, the flag positive
    ]
    assert reason(referral.evaluate(), "review.pregnancy").outcome == "met"
