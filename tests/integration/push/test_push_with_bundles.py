"""Pushed resources and Bundles mix: a referral sent as a transaction Bundle resumes when the
sender later pushes the missing Observation about the Bundle's Patient."""

from __future__ import annotations

from referral_service.services.intake.supporting import supporting_for
from referral_service.worker import Worker
from tests.integration.push.placer import OBSERVATIONS, Placer, chronic_migraine, patient


def _bundle() -> dict:
    subject = {"reference": "urn:uuid:patient-1"}
    entries = [
        ("urn:uuid:patient-1", patient()),
        ("urn:uuid:condition-1", chronic_migraine(subject)),
        ("urn:uuid:headache-1", OBSERVATIONS["headache"](subject)),
    ]
    referral = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "https://er.example.org/referrals", "value": "bundle-1"}],
        "status": "active",
        "intent": "order",
        "subject": subject,
        "authoredOn": "2026-11-23T09:00:00Z",
        "reasonReference": [{"reference": "urn:uuid:condition-1"}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": kind}}
            for url, resource, kind in [
                *((u, r, r["resourceType"]) for u, r in entries),
                ("urn:uuid:referral-1", referral, "ServiceRequest"),
            ]
        ],
    }


def test_a_bundled_referral_resumes_on_a_pushed_observation(placer: Placer, runtime) -> None:
    answer = placer.ask("POST", "/fhir", _bundle())
    location = next(
        e["response"]["location"]
        for e in answer["entry"]
        if "ServiceRequest" in e["response"]["location"]
    )
    referral = placer.ask("GET", "/fhir/ServiceRequest/" + location.split("/")[-3])
    Worker(runtime).run_until_idle()
    task = placer.ask("GET", f"/fhir/Task?focus=ServiceRequest/{referral['id']}")["entry"][0]
    assert task["resource"]["status"] == "on-hold", task

    placer.clinical(OBSERVATIONS["migraine"](referral["subject"]), "migraine")
    Worker(runtime).run_until_idle()
    task = placer.ask("GET", f"/fhir/Task?focus=ServiceRequest/{referral['id']}")["entry"][0]
    assert task["resource"]["businessStatus"]["text"] == "booked", task


def test_what_came_with_a_referral_is_kept_once_each(runtime) -> None:
    sent = [
        {"resourceType": "Observation", "status": "final"},
        {"resourceType": "Observation", "status": "final"},
        {"resourceType": "Observation", "id": "o1"},
        {"resourceType": "Observation", "id": "o1"},
    ]
    with runtime.unit_of_work(read_only=True) as uow:
        assert len(supporting_for(uow, "er-a", "none", "Patient/none", sent)) == 3
        assert supporting_for(uow, "er-a", "none", None, []) == []
