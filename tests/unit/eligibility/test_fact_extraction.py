"""The FHIR edge: where facts come from, and that odd input never raises."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from referral_service.fhir.facts import extract_facts, parse_datetime

from .builders import ICD, ICD_OID, LOINC, NOW, RECEIVED, WHO, Referral, cc, coding


def _facts(referral: Referral, resolver: Any = None):  # type: ignore[no-untyped-def]
    bundle = referral.bundle()
    request, *others = (e for e in bundle["entry"])
    return extract_facts(
        request["resource"],
        bundle_resources=others,
        resolver=resolver or referral.remote.get,
        received_at=RECEIVED,
    )


def test_temperature_in_fahrenheit_is_converted_to_celsius() -> None:
    facts = _facts(Referral().temperature(100.4, "[degF]"))
    temps = [o for o in facts.observations if o.code.code_in("http://loinc.org") == "8310-5"]
    assert (temps[0].value, temps[0].unit) == (38.0, "Cel")


def test_other_patients_resources_are_left_out() -> None:
    referral = Referral()
    referral.place(
        {
            "resourceType": "Condition",
            "code": cc(coding("G44.53")),
            "subject": {"reference": "urn:uuid:someone-else"},
        }
    )
    assert referral.evaluate().decision == "eligible"
    assert all(c.code.codes[0].code != "G4453" for c in _facts(referral).conditions)


def test_unreferenced_bundle_resources_about_the_subject_count() -> None:
    referral = Referral()
    referral.patient["id"] = "p1"
    referral.request["subject"] = {"reference": "Patient/p1"}
    referral.place(
        {
            "resourceType": "Condition",
            "code": cc(coding("G44.53")),
            "subject": {"reference": "Patient/p1"},
        }
    )
    assert referral.evaluate().decision == "emergency-redirect"


def test_a_resolver_that_raises_is_missing_data() -> None:
    def broken(ref: str) -> dict[str, Any]:
        raise ConnectionError("EHR down")

    referral = Referral().condition("G44.53", via="unresolved")
    facts = _facts(referral, resolver=broken)
    assert len(facts.conditions) == 1  # the headache only


def test_resolver_junk_is_ignored() -> None:
    referral = Referral().condition("G44.53", via="unresolved")
    facts = _facts(referral, resolver=lambda ref: ["not", "a", "resource"])
    assert len(facts.conditions) == 1


def test_onset_age_becomes_a_date() -> None:
    referral = Referral(headache=None)
    referral.place(
        {
            "resourceType": "Condition",
            "code": cc(coding("G43.909")),
            "onsetAge": {"value": 40, "unit": "years", "code": "a"},
        }
    )
    condition = _facts(referral).conditions[0]
    assert condition.onset is not None and condition.onset.year in (2020, 2021)


def test_r5_shapes_are_understood() -> None:
    referral = Referral(headache=None)
    referral.request["reason"] = [{"concept": cc(coding("G44.53"))}]
    referral.place({"resourceType": "Encounter", "class": [cc(coding("EMER"))]})
    facts = _facts(referral)
    assert facts.reason_codes[0].codes[0].code == "G4453"
    assert facts.encounters[0].class_code == "EMER"


def test_partial_and_naive_dates() -> None:
    assert parse_datetime("2024") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_datetime("2024-05") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_datetime("2024-05-03T10:00:00") == datetime(2024, 5, 3, 10, tzinfo=UTC)
    assert parse_datetime("2024-05-03T10:00:00+02:00") == datetime(2024, 5, 3, 8, tzinfo=UTC)
    assert parse_datetime("yesterday") is None
    assert parse_datetime(20240503) is None


def test_medication_reference_to_a_medication_resource() -> None:
    referral = Referral().protocol("dhe")
    referral.place({"resourceType": "Medication", "code": cc(text="Ritonavir 100 mg")}, key="med")
    referral.place(
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationReference": {"reference": "urn:uuid:med"},
        }
    )
    assert referral.evaluate().protocol == "standard-infusion"


def test_authored_on_sets_now() -> None:
    assert _facts(Referral()).now == NOW


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "coding",
                    "code",
                    "system",
                    "value",
                    "start",
                    "end",
                    "reference",
                    "text",
                    "valueQuantity",
                    "unit",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
_FIELDS = [
    "code",
    "clinicalStatus",
    "verificationStatus",
    "onsetDateTime",
    "onsetAge",
    "onsetPeriod",
    "recordedDate",
    "note",
    "valueQuantity",
    "valueInteger",
    "component",
    "effectivePeriod",
    "effectiveDateTime",
    "issued",
    "valueCodeableConcept",
    "valueString",
    "interpretation",
    "status",
    "medicationCodeableConcept",
    "medicationReference",
    "statusReason",
    "class",
    "category",
    "subject",
    "reaction",
]
_TYPES = [
    "Condition",
    "Observation",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "AllergyIntolerance",
    "Encounter",
    "DiagnosticReport",
    "Patient",
    "Medication",
]


@settings(max_examples=150, deadline=None)
@given(
    rtype=st.sampled_from(_TYPES),
    fields=st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6),
    request_fields=st.dictionaries(
        st.sampled_from(
            [
                "reasonCode",
                "reasonReference",
                "supportingInfo",
                "note",
                "contained",
                "subject",
                "encounter",
                "code",
                "authoredOn",
                "identifier",
                "priority",
            ]
        ),
        _JSON,
        max_size=4,
    ),
)
def test_malformed_fields_never_raise(
    rtype: str, fields: dict[str, Any], request_fields: dict[str, Any]
) -> None:
    referral = Referral()
    referral.place({"resourceType": rtype, **fields})
    referral.request.update(request_fields)
    decision = referral.evaluate()
    assert decision.decision in (
        "eligible",
        "ineligible",
        "needs-information",
        "needs-review",
        "emergency-redirect",
    )


def test_icd_system_code_with_dot_is_normalized() -> None:
    facts = _facts(Referral(headache="g43.709"))
    codes = [c.code for cond in facts.conditions for c in cond.code.codes if c.system == ICD]
    assert codes == ["G43709"]


def test_icd_10_cm_under_its_oid_is_icd_10_cm() -> None:
    facts = _facts(Referral(headache=None).condition("g43.709", ICD_OID))
    codes = [(c.system, c.code) for cond in facts.conditions for c in cond.code.codes]
    assert codes == [(ICD, "G43709")]


def test_who_icd_10_keeps_its_own_system_normalized_like_icd_10_cm() -> None:
    facts = _facts(Referral(headache=None).condition("i60.9", WHO).reason_code("G43.3", WHO))
    conditions = [(c.system, c.code) for cond in facts.conditions for c in cond.code.codes]
    reasons = [(c.system, c.code) for r in facts.reason_codes for c in r.codes]
    assert (conditions, reasons) == ([(WHO, "I609")], [(WHO, "G433")])


def test_qualitative_results_keep_their_string_and_interpretation() -> None:
    referral = Referral().hcg("Negative", by="string").hcg("positive", by="interpretation")
    results = [o for o in _facts(referral).observations if o.code.code_in(LOINC) == "2106-3"]
    assert [o.value_text for o in results] == ["Negative", ""]
    assert [[c.code for c in o.interpretation] for o in results] == [[], ["POS"]]
    assert all(o.value is None and o.value_code is None for o in results)


@settings(max_examples=150, deadline=None)
@given(
    document=st.dictionaries(
        st.sampled_from(["resourceType", "entry", "type", "id", "contained", "subject"]),
        _JSON
        | st.sampled_from(["Bundle", "ServiceRequest"])
        | st.lists(
            st.fixed_dictionaries(
                {
                    "fullUrl": _JSON,
                    "resource": st.one_of(
                        _JSON,
                        st.fixed_dictionaries(
                            {"resourceType": st.sampled_from(_TYPES + ["ServiceRequest"])},
                            optional={"id": _JSON, "subject": _JSON, "code": _JSON},
                        ),
                    ),
                }
            ),
            max_size=4,
        ),
        max_size=5,
    )
)
def test_any_json_document_is_a_decision_or_unreadable(document: dict[str, Any]) -> None:
    from referral_service.services.assessment.evaluation import (
        UnreadableReferral,
        evaluate_document,
    )

    from .builders import POLICY

    try:
        decision = evaluate_document(document, policy=POLICY, received_at=RECEIVED)
    except UnreadableReferral:
        return
    assert decision.decision in (
        "ineligible",
        "needs-information",
        "emergency-redirect",
        "needs-review",
        "eligible",
    )


def _facts_in(referral: Referral, zone: str):  # type: ignore[no-untyped-def]
    bundle = referral.bundle()
    request, *others = bundle["entry"]
    return extract_facts(
        request["resource"], bundle_resources=others, received_at=RECEIVED, time_zone=ZoneInfo(zone)
    )


def test_the_reference_date_is_nows_date_in_the_clinics_zone() -> None:
    """Section 8 item 7: 2026-06-01T02:00Z is 31 May in New York, 1 June in London."""
    referral = Referral().authored("2026-06-01T02:00:00Z")
    assert _facts_in(referral, "America/New_York").reference_date == date(2026, 5, 31)
    assert _facts_in(referral, "Europe/London").reference_date == date(2026, 6, 1)
    assert _facts_in(referral, "America/New_York").now == datetime(2026, 6, 1, 2, tzinfo=UTC)


def test_a_date_only_authored_on_is_that_date_in_every_zone() -> None:
    referral = Referral().authored("2026-06-01")
    assert _facts_in(referral, "America/New_York").reference_date == date(2026, 6, 1)
    assert _facts_in(referral, "Pacific/Auckland").reference_date == date(2026, 6, 1)


def test_without_authored_on_the_reference_date_is_the_receipt_date_in_the_zone() -> None:
    referral = Referral()
    del referral.request["authoredOn"]
    received = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)  # RECEIVED: 3 June, 05:00 in New York
    assert _facts_in(referral, "America/New_York").reference_date == received.date()
    assert _facts_in(referral, "Pacific/Kiritimati").reference_date == date(2026, 6, 3)


def test_imaging_is_attached_whatever_its_subject_but_conditions_are_not() -> None:
    """Section 8 item 6: every DiagnosticReport and Encounter entry of the Bundle is attached;
    a Condition about another patient is still left out."""
    referral = Referral().from_emergency(referenced=False, imaging_subject="Patient/ehr-4711")
    referral.place(
        {
            "resourceType": "Condition",
            "code": cc(coding("G44.53")),
            "subject": {"reference": "Patient/ehr-4711"},
        }
    )
    facts = _facts(referral)
    assert len(facts.reports) == 1
    assert [c.code.codes[0].code for c in facts.conditions] == ["G43709"]


def test_unresolvable_references_are_kept_with_what_they_may_be() -> None:
    referral = (
        Referral()
        .dangling("Condition/gone", "reasonReference")
        .dangling("urn:uuid:gone", "reasonReference")
        .dangling("#gone")
        .dangling("https://ehr.example/fhir/Encounter/9/_history/2", "encounter")
        .condition("G44.53", via="resolver")
    )
    facts = _facts(referral)
    kinds = {u.ref: u.kinds for u in facts.unreadable}
    assert kinds == {
        "Condition/gone": frozenset({"Condition"}),
        "urn:uuid:gone": frozenset(
            {"Condition", "Observation", "DiagnosticReport", "DocumentReference"}
        ),
        "#gone": frozenset(),
        "https://ehr.example/fhir/Encounter/9/_history/2": frozenset({"Encounter"}),
    }


def test_a_reference_the_resolver_fails_on_is_unreadable() -> None:
    def broken(ref: str) -> dict[str, Any]:
        raise ConnectionError("EHR down")

    facts = _facts(Referral().condition("G44.53", via="unresolved"), resolver=broken)
    assert [u.kinds for u in facts.unreadable] == [frozenset({"Condition"})]
    assert facts.unreadable[0].ref.startswith("Condition/r")
