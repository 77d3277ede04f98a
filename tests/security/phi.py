"""Distinctive synthetic patient data, and a referral flow that sends it every way a client can
(body, query string, malformed JSON, invalid resources), for the PHI-in-logs tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from tests.support.referrals import eligible_referral

FAMILY = "Zqxvandermeerowitz"
GIVEN = "Quillonetta"
BIRTH_DATE = "1911-02-03"
MRN = "MRN7Q4Z9X2K"
REFERRAL_NUMBER = "REFPHI88Q1W"
NOTE = "Xylophagous-headache-note-5521"
PHONE = "555-0199-7731"
PHI = (FAMILY, GIVEN, BIRTH_DATE, MRN, REFERRAL_NUMBER, NOTE, PHONE)
REFERRAL_SYSTEM = "https://er.example.org/referrals"


def phi_referral() -> dict[str, Any]:
    referral = eligible_referral(REFERRAL_NUMBER)
    patient = referral["contained"][0]
    patient.update(
        name=[{"family": FAMILY, "given": [GIVEN]}],
        birthDate=BIRTH_DATE,
        identifier=[{"system": "https://hospital.example.org/mrn", "value": MRN}],
        telecom=[{"system": "phone", "value": PHONE}],
    )
    referral["note"] = [{"text": NOTE}]
    return referral


Send = Callable[[str, str, Any, dict[str, str]], Any]
JSON_HEADERS = {"Content-Type": "application/fhir+json"}


def hostile_variants() -> list[tuple[str, str, bytes]]:
    """(method, path, raw body) of refused requests that each carry the patient's data."""
    invalid = phi_referral()
    invalid["status"] = f"not-a-status-{FAMILY}"
    wrong_type = copy.deepcopy(phi_referral())
    wrong_type["subject"] = {"reference": f"Patient/{MRN}", "display": FAMILY}
    wrong_type["authoredOn"] = BIRTH_DATE + f"T99:99:99 {GIVEN}"
    malformed = f'{{"resourceType": "ServiceRequest", "note": [{{"text": "{NOTE} {FAMILY}"}},,]}}'
    return [
        ("POST", "/fhir/ServiceRequest", malformed.encode()),
        ("POST", "/fhir/ServiceRequest", json.dumps(invalid).encode()),
        ("POST", "/fhir/ServiceRequest", json.dumps(wrong_type).encode()),
        ("POST", "/fhir/ServiceRequest/$evaluate", malformed.encode()),
        ("POST", "/fhir", json.dumps({"resourceType": "Bundle", "type": FAMILY}).encode()),
        ("POST", "/fhir/ServiceRequest", f"\xff\xfe{FAMILY}".encode("latin-1")),
        ("POST", "/fhir/ServiceRequest", json.dumps([FAMILY, MRN]).encode()),
    ]


def run_flow(send: Send, run_worker: Callable[[], None]) -> str:
    """The whole life of a referral carrying PHI, plus refused requests; returns its id."""
    referral = phi_referral()
    created = send("POST", "/fhir/ServiceRequest", referral, JSON_HEADERS)
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    conditional = {
        **JSON_HEADERS,
        "If-None-Exist": f"identifier={REFERRAL_SYSTEM}|{REFERRAL_NUMBER}",
    }
    assert send("POST", "/fhir/ServiceRequest", referral, conditional).status_code == 200
    assert send("POST", "/fhir/ServiceRequest/$evaluate", referral, JSON_HEADERS).status_code == 200
    run_worker()
    read = send("GET", f"/fhir/ServiceRequest/{referral_id}", None, {})
    assert FAMILY in read.text and MRN in read.text  # the data is really there to leak
    for query in (
        f"identifier={REFERRAL_SYSTEM}|{REFERRAL_NUMBER}",
        f"patient=Patient/{MRN}",
        f"status=active&_lastUpdated=ge{BIRTH_DATE}",
    ):
        assert send("GET", f"/fhir/ServiceRequest?{query}", None, {}).status_code in (200, 400)
    send("GET", f"/fhir/Task?focus=ServiceRequest/{referral_id}", None, {})
    send("GET", f"/api/referrals/{referral_id}", None, {})
    assert send("GET", "/fhir/ServiceRequest/no-such-referral", None, {}).status_code == 404
    stale = {**JSON_HEADERS, "If-Match": 'W/"7"'}
    referral["id"] = referral_id
    assert send("PUT", f"/fhir/ServiceRequest/{referral_id}", referral, stale).status_code == 412
    for method, path, raw in hostile_variants():
        response = send(method, path, raw, JSON_HEADERS)
        assert 400 <= response.status_code < 500, (path, response.status_code)
    return str(referral_id)


def leaks(text: str) -> list[str]:
    return [value for value in PHI if value in text]
