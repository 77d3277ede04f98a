"""The resource types a referral may bring along (in its Bundle, or pushed one by one): the one
list both paths accept, and the element that names the patient for those that have one."""

from __future__ import annotations

# The element naming the patient, for the types that have `patient`/`subject` search (FHIR R4).
PATIENT_ELEMENT = {
    **dict.fromkeys(("Encounter", "Condition", "Observation", "DiagnosticReport"), "subject"),
    **dict.fromkeys(
        ("MedicationStatement", "MedicationRequest", "MedicationAdministration"), "subject"
    ),
    "QuestionnaireResponse": "subject",
    "AllergyIntolerance": "patient",
}
SUPPORTING_TYPES = ("Patient", "Practitioner", "PractitionerRole", "Organization", *PATIENT_ELEMENT)
# Carried only inside a referral's Bundle (or contained): a Medication a MedicationStatement or
# MedicationRequest names by medicationReference (cc §8 item 2); it is not pushed on its own.
IN_BUNDLES_ONLY = ("Medication",)
