"""The FHIR edge: where facts come from, and that odd input never raises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from referral_service.fhir.facts import extract_facts, parse_datetime

from .builders import ICD, NOW, RECEIVED, Referral, cc, coding


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
