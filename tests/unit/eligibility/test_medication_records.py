"""Criteria section 8 items 1-3 beyond the decision table: what the FHIR edge reads from a
MedicationRequest, a Medication and a Dosage, and the plain words the reasons use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from referral_service.domain.policy import DEFAULT_POLICY, PolicyError, load_policy
from referral_service.fhir.facts import extract_facts

from .builders import RECEIVED, SCT, Referral, cc, reason
from .test_criteria_table import EVERY_OTHER_DAY, dhe, eptinezumab, refractory_by_metrics


def _medications(referral: Referral) -> list[Any]:
    bundle = referral.bundle()
    request, *others = bundle["entry"]
    facts = extract_facts(
        request["resource"], bundle_resources=others, resolver=None, received_at=RECEIVED
    )
    return list(facts.medications)


def test_a_prescription_reads_its_dispense_and_dosage() -> None:
    referral = Referral(metrics=False).prescription(
        "topiramate",
        status="completed",
        validity_days=45,
        supply=(4, "wk"),
        repeats=2,
        dosage={
            "text": "50 mg nightly",
            "timing": {"repeat": {"frequency": 1, "period": 48, "periodUnit": "h"}},
            "route": cc({"system": SCT, "code": "26643006", "display": "Oral route"}),
            "asNeededBoolean": False,
        },
    )
    (med,) = _medications(referral)
    assert (med.kind, med.status, med.supply_days, med.repeats) == (
        "MedicationRequest",
        "completed",
        28.0,
        2,
    )
    assert (med.validity_end - med.validity_start).days == 45
    (dosage,) = med.dosages
    assert (dosage.period_days, dosage.frequency, dosage.as_needed) == (2.0, 1.0, False)
    assert dosage.texts == ("50 mg nightly",) and dosage.route.codes[0].code == "26643006"


@pytest.mark.parametrize("named_by", ["contained", "bundle", "ingredient"])
def test_a_medication_reference_names_the_drug_and_is_evidence(named_by: str) -> None:
    (med,) = _medications(Referral(metrics=False).prescription("Topamax", named_by=named_by))
    assert any("topamax" in name for name in med.medication.names())
    assert med.medication_ref is not None
    if named_by != "bundle":  # contained in the record: named after the record
        assert med.medication_ref.startswith("urn:uuid:") and "#m" in med.medication_ref


def test_an_ingredient_given_as_a_substance_reference_names_the_drug() -> None:
    referral = Referral(metrics=False)
    referral.entries.append(
        {
            "fullUrl": "urn:uuid:subst",
            "resource": {"resourceType": "Substance", "code": cc(text="Amitriptyline")},
        }
    )
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "stopped",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "m",
                "form": cc(text="Ophthalmic solution"),
                "ingredient": [{"itemReference": {"reference": "urn:uuid:subst"}}],
            }
        ],
        "medicationReference": {"reference": "#m"},
    }
    (med,) = _medications(referral.place(res))
    assert med.medication.names() == ("amitriptyline",)
    assert med.form is not None and med.form.text == "Ophthalmic solution"


def test_malformed_dispense_and_dosage_are_skipped_not_fatal() -> None:
    referral = Referral(metrics=False)
    referral.place(
        {
            "resourceType": "MedicationRequest",
            "status": "stopped",
            "medicationCodeableConcept": cc(text="topiramate"),
            "dispenseRequest": {
                "validityPeriod": "soon",
                "expectedSupplyDuration": {"value": "ninety", "code": "d"},
                "numberOfRepeatsAllowed": -3,
            },
            "dosageInstruction": ["twice", {"timing": {"repeat": {"period": 2, "periodUnit": 7}}}],
            "statusReason": {"text": "nausea"},
        }
    )
    (med,) = _medications(referral)
    assert (med.supply_days, med.repeats, med.validity_start) == (None, 0, None)
    assert med.dosages[0].period_days is None
    assert referral.evaluate().decision == "eligible"


def test_a_medication_whose_dose_form_is_a_cream_counts_for_no_rule() -> None:
    referral = dhe()
    referral.place(
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "contained": [
                {
                    "resourceType": "Medication",
                    "id": "k",
                    "code": cc(text="ketoconazole 2%"),
                    "form": cc(text="Cream"),
                }
            ],
            "medicationReference": {"reference": "#k"},
        }
    )
    assert referral.evaluate().protocol == "dhe"


def test_the_reason_names_a_failed_prescription_in_plain_words() -> None:
    referral = refractory_by_metrics(2).prescription(
        "topiramate", supply=(3, "mo"), reason="side effects"
    )
    referral.prescription("amitriptyline", status="completed", supply=(30, "d"), repeats=2)
    detail = reason(referral.evaluate(), "category.refractory-migraine").detail
    assert "stopped for side effects after 3 months: topiramate (MedicationRequest)" in detail
    assert "completed after 3 months of supply: amitriptyline (MedicationRequest)" in detail


def test_the_reason_names_a_brand_and_its_medication_and_cites_both() -> None:
    decision = dhe().prescription("Paxlovid", status="active", named_by="bundle").evaluate()
    found = reason(decision, "exclusion.dhe")
    assert "active strong CYP3A4 inhibitor: ritonavir (paxlovid, MedicationRequest via " in (
        found.detail
    )
    assert any(e.startswith("Medication/m") for e in found.evidence)
    assert len(found.evidence) == 2


def test_the_reason_names_an_every_other_day_rimegepant() -> None:
    decision = eptinezumab().medication("Nurtec ODT", dosage=EVERY_OTHER_DAY).evaluate()
    detail = reason(decision, "eptinezumab.criteria").detail
    assert "rimegepant every other day (nurtec, MedicationStatement)" in detail


def test_the_reason_names_a_stopped_every_other_day_rimegepant_and_how_long() -> None:
    referral = eptinezumab(classes=1).medication(
        "rimegepant", status="stopped", start_days=200, end_days=100, dosage=EVERY_OTHER_DAY
    )
    detail = reason(referral.evaluate(), "eptinezumab.criteria").detail
    assert "stopped after 100 days: rimegepant every other day (MedicationStatement)" in detail


def test_statements_read_before_revision_2026_12_keep_their_words() -> None:
    detail = reason(refractory_by_metrics(3).evaluate(), "category.refractory-migraine").detail
    assert detail.startswith(
        "3 failed preventive classes (beta-blocker, anticonvulsant, tricyclic)"
    )
    assert "Medication" not in detail and "stopped" not in detail


@pytest.mark.parametrize(
    ("section", "value", "key"),
    [
        ("brand_names", {"Sumaxol": ["sumatriptanol"]}, "medication_records.brand_names.Sumaxol"),
        ("dosed_preventives", {"rimegepant": "nowhere"}, "medication_records.dosed_preventives"),
    ],
)
def test_a_policy_naming_an_unknown_drug_is_refused_with_its_key(
    tmp_path: Path, section: str, value: object, key: str
) -> None:
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data["medication_records"][section] = value
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(PolicyError, match=f": {key}"):
        load_policy(str(path))


def test_the_default_policy_reads_brands_and_dose_forms_from_the_file() -> None:
    records = load_policy(None).medication_records
    assert records.brand_names["paxlovid"] == ("ritonavir", "nirmatrelvir")
    assert records.not_systemic.in_text("Timolol Eye  Drops")
    assert not records.not_systemic.in_text("azithromycin (macrolide antibiotic)")
    assert records.dosed_preventives == {"rimegepant": "rimegepant-every-other-day"}
