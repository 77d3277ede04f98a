"""A bare ED referral (an ICD-10 code and a medication list) goes needs-information, its Task
names the clinic's form and the items missing, and the form's answers bring it to booked,
each way an answer arrives: REST create, or inside the referral's transaction Bundle."""

from __future__ import annotations

from typing import Any

from referral_service.worker import Worker
from tests.integration.push.placer import Send
from tests.support.form_answers import FORM, FORM_URL, frequency, pregnancy, response
from tests.support.referrals import FHIR_JSON, ICD10, METRICS

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
HEADERS = {"Content-Type": FHIR_JSON}


def ed_referral(case: str, *extra: dict[str, Any]) -> dict[str, Any]:
    """What an ED sends: a patient, an ICD-10 code, the medication list. No numbers."""
    patient = f"urn:uuid:00000000-0000-4000-8000-{case:0>12}"

    def medication(code: str, name: str) -> dict[str, Any]:
        return {
            "request": {"method": "POST", "url": "MedicationStatement"},
            "resource": {
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": code, "display": name}]
                },
                "subject": {"reference": patient},
            },
        }

    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient,
                "request": {"method": "POST", "url": "Patient"},
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "https://er.example.org/mrn", "value": f"m-{case}"}],
                    "birthDate": "1984-03-09",
                    "gender": "female",
                },
            },
            medication("37418", "sumatriptan"),
            medication("5640", "ibuprofen"),
            {
                "fullUrl": f"urn:uuid:10000000-0000-4000-8000-{case:0>12}",
                "request": {"method": "POST", "url": "ServiceRequest"},
                "resource": {
                    "resourceType": "ServiceRequest",
                    "identifier": [
                        {"system": "https://er.example.org/referrals", "value": f"ed-{case}"}
                    ],
                    "status": "active",
                    "intent": "order",
                    "priority": "routine",
                    "subject": {"reference": patient},
                    "authoredOn": "2026-11-23T09:00:00Z",
                    "reasonCode": [{"coding": [{"system": ICD10, "code": "G43.909"}]}],
                },
            },
            *extra,
        ],
    }


def refer(send: Send, bundle: dict[str, Any]) -> tuple[str, str, str]:
    """Posts the Bundle; (ServiceRequest id, Patient reference, Task id)."""
    status, answer = send("POST", "/fhir", bundle, HEADERS)
    assert status == 200, answer
    locations = [e["response"]["location"].split("/fhir/")[1] for e in answer["entry"]]
    request = next(loc for loc in locations if loc.startswith("ServiceRequest/")).split("/")[1]
    patient = "/".join(next(loc for loc in locations if loc.startswith("Patient/")).split("/")[:2])
    status, tasks = send("GET", f"/fhir/Task?focus=ServiceRequest/{request}", None, {})
    return request, patient, tasks["entry"][0]["resource"]["id"]


def task_of(send: Send, task_id: str) -> dict[str, Any]:
    status, task = send("GET", f"/fhir/Task/{task_id}", None, {})
    assert status == 200
    return task


def state(task: dict[str, Any]) -> tuple[str, str]:
    return task["status"], task["businessStatus"]["coding"][0]["code"]


def no_metric_observation_anywhere(send: Send) -> None:
    status, found = send("GET", "/fhir/Observation", None, {})
    assert status == 200
    for entry in found.get("entry", []):
        codes = entry["resource"].get("code", {}).get("coding", [])
        assert all(c.get("system") != METRICS for c in codes)


def test_a_bare_ed_referral_asks_with_the_form_and_its_answers_book_it(as_sender, runtime) -> None:
    send = as_sender("er-a")
    request, patient, task_id = refer(send, ed_referral("1"))
    Worker(runtime).run_until_idle()
    task = task_of(send, task_id)
    assert state(task) == ("on-hold", "needs-information")
    inputs = task["input"]
    form = [i for i in inputs if "valueCanonical" in i]
    assert [i["valueCanonical"] for i in form] == [FORM]
    asked = {
        ext["valueString"]
        for item in inputs
        for ext in item.get("extension", [])
        if ext["url"].endswith("/form-item")
    }
    assert {"headache-days-per-month", "migraine-days-per-month", "months-this-frequent"} <= asked
    status, questionnaire = send("GET", f"/fhir/Questionnaire?url={FORM_URL}", None, {})
    assert questionnaire["total"] == 1
    form_items = {
        i["linkId"]
        for g in questionnaire["entry"][0]["resource"]["item"]
        for i in g.get("item", [])
    }
    assert asked <= form_items

    answers = response(
        frequency(20, 12, 6),
        pregnancy(),
        subject={"reference": patient},
        basedOn=[{"reference": f"ServiceRequest/{request}"}],
    )
    status, stored = send("POST", "/fhir/QuestionnaireResponse", answers, HEADERS)
    assert status == 201, stored
    assert Worker(runtime).run_until_idle() >= 2  # evaluate at once, then book
    task = task_of(send, task_id)
    assert state(task) == ("accepted", "booked")
    with runtime.unit_of_work(read_only=True) as uow:
        decision = uow.referrals.get(request).decision
    assert decision.category == "chronic-migraine"
    chronic = next(r for r in decision.reasons if r.rule == "category.chronic-migraine")
    assert f"QuestionnaireResponse/{stored['id']}" in chronic.evidence  # the answers as evidence
    no_metric_observation_anywhere(send)


def test_answers_in_the_referrals_transaction_decide_it_on_arrival(as_sender, runtime) -> None:
    send = as_sender("er-a")
    patient = "urn:uuid:00000000-0000-4000-8000-000000000002"
    answers = response(frequency(20, 12, 6), pregnancy(), subject={"reference": patient})
    entry = {
        "fullUrl": "urn:uuid:20000000-0000-4000-8000-000000000002",
        "request": {"method": "POST", "url": "QuestionnaireResponse"},
        "resource": answers,
    }
    _, _, task_id = refer(send, ed_referral("2", entry))
    Worker(runtime).run_until_idle()
    assert state(task_of(send, task_id)) == ("accepted", "booked")
    no_metric_observation_anywhere(send)


def test_bad_answers_in_a_transaction_store_nothing(as_sender, runtime) -> None:
    send = as_sender("er-a")
    patient = "urn:uuid:00000000-0000-4000-8000-000000000003"
    answers = response(frequency(45, 12, 6), subject={"reference": patient})
    entry = {
        "fullUrl": "urn:uuid:20000000-0000-4000-8000-000000000003",
        "request": {"method": "POST", "url": "QuestionnaireResponse"},
        "resource": answers,
    }
    status, outcome = send("POST", "/fhir", ed_referral("3", entry), HEADERS)
    assert status in (400, 422), outcome
    issues = outcome["issue"]
    assert any("headache-days-per-month" in " ".join(i.get("expression", [])) for i in issues)
    assert send("GET", "/fhir/ServiceRequest", None, {})[1]["total"] == 0
    assert send("GET", "/fhir/QuestionnaireResponse", None, {})[1]["total"] == 0


def test_answers_based_on_the_referral_alone_resume_it(as_sender, runtime) -> None:
    send = as_sender("er-a")
    request, _, task_id = refer(send, ed_referral("4"))
    Worker(runtime).run_until_idle()
    answers = response(frequency(20, 12, 6), basedOn=[{"reference": f"ServiceRequest/{request}"}])
    status, stored = send("POST", "/fhir/QuestionnaireResponse", answers, HEADERS)
    assert status == 201, stored
    assert stored["subject"]["reference"].startswith("Patient/")
    Worker(runtime).run_until_idle()
    assert state(task_of(send, task_id)) == ("accepted", "booked")


def test_answers_based_on_another_senders_referral_are_refused(as_sender, runtime) -> None:
    request, _, task_id = refer(as_sender("er-a"), ed_referral("5"))
    Worker(runtime).run_until_idle()
    stranger = as_sender("er-b")
    answers = response(frequency(20, 12, 6), basedOn=[{"reference": f"ServiceRequest/{request}"}])
    status, outcome = stranger("POST", "/fhir/QuestionnaireResponse", answers, HEADERS)
    assert status == 422, outcome
    assert outcome["issue"][0]["expression"] == ["QuestionnaireResponse.basedOn"]
    assert state(task_of(as_sender("er-a"), task_id)) == ("on-hold", "needs-information")
