"""Client for the clinic EHR's FHIR R4 API: retries, typed errors, SMART Backend Services auth."""
