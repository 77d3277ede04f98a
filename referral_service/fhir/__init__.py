"""fhir layer."""
