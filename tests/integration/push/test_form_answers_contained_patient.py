"""A referral whose Patient is contained in its ServiceRequest (`subject: #p`) goes
needs-information; its form answers resume it whichever way they come (REST create, a
transaction Bundle, a REF^I13 message, a placer Task update), found by the referral they are
`basedOn` (or the Task they update), not by a Patient they cannot name. Another sender's answers
never touch it. Over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from referral_service.worker import Worker
from tests.integration.push.placer import Send
from tests.integration.push.test_form_answers import HEADERS, state, task_of
from tests.integration.push.test_form_answers_other_ways import _contained_update, _message
from tests.support.form_answers import frequency, pregnancy, response
from tests.support.referrals import ICD10

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def contained_referral(case: str) -> dict[str, Any]:
    """An ED referral as one ServiceRequest: its Patient and medication list contained."""

    def medication(key: str, code: str, name: str) -> dict[str, Any]:
        return {
            "resourceType": "MedicationStatement",
            "id": key,
            "status": "active",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": code, "display": name}]
            },
            "subject": {"reference": "#p"},
        }

    patient = {
        "resourceType": "Patient",
        "id": "p",
        "identifier": [{"system": "https://er.example.org/mrn", "value": f"c-{case}"}],
        "birthDate": "1984-03-09",
        "gender": "female",
    }
    return {
        "resourceType": "ServiceRequest",
        "contained": [
            patient,
            medication("m1", "37418", "sumatriptan"),
            medication("m2", "5640", "ibuprofen"),
        ],
        "identifier": [{"system": "https://er.example.org/referrals", "value": f"cp-{case}"}],
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "subject": {"reference": "#p"},
        "supportingInfo": [{"reference": "#m1"}, {"reference": "#m2"}],
        "authoredOn": "2026-11-23T09:00:00Z",
        "reasonCode": [{"coding": [{"system": ICD10, "code": "G43.909"}]}],
    }


def waiting(send: Send, runtime, case: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(ServiceRequest id, Task id) of a contained-Patient referral on hold for information."""
    status, made = send("POST", "/fhir/ServiceRequest", contained_referral(case), HEADERS)
    assert status == 201, made
    assert made["subject"] == {"reference": "#p"}
    status, tasks = send("GET", f"/fhir/Task?focus=ServiceRequest/{made['id']}", None, {})
    task_id = tasks["entry"][0]["resource"]["id"]
    Worker(runtime).run_until_idle()
    assert state(task_of(send, task_id)) == ("on-hold", "needs-information")
    return made["id"], task_id


def answers(based_on: str | None = None) -> dict[str, Any]:
    extra = {"basedOn": [{"reference": based_on}]} if based_on else {}
    return response(frequency(20, 12, 6), pregnancy(), **extra)


def by_rest(send: Send, request: str, task_id: str) -> None:
    status, stored = send(
        "POST", "/fhir/QuestionnaireResponse", answers(f"ServiceRequest/{request}"), HEADERS
    )
    assert status == 201, stored
    assert "subject" not in stored  # never a `#p` that would dangle outside the referral


def by_transaction(send: Send, request: str, task_id: str) -> None:
    entry = {
        "fullUrl": "urn:uuid:30000000-0000-4000-8000-000000000001",
        "request": {"method": "POST", "url": "QuestionnaireResponse"},
        "resource": answers(f"ServiceRequest/{request}"),
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    status, answer = send("POST", "/fhir", bundle, HEADERS)
    assert status == 200, answer


def by_message(send: Send, request: str, task_id: str) -> None:
    message = _message(f"cp-{request[:8]}", answers(f"Task/{task_id}"))
    status, answer = send("POST", "/fhir/$process-message", message, HEADERS)
    assert status == 200, answer
    assert answer["entry"][0]["resource"]["response"]["code"] == "ok"


def by_task_update(send: Send, request: str, task_id: str) -> None:
    wanted = _contained_update(task_of(send, task_id), answers())
    status, updated = send("PUT", f"/fhir/Task/{task_id}", wanted, HEADERS)
    assert status == 200, updated


@pytest.fixture
def send(over_http) -> Send:  # type: ignore[no-untyped-def]
    return over_http("er-a")


@pytest.mark.parametrize("way", [by_rest, by_transaction, by_message, by_task_update])
def test_answers_resume_a_contained_patient_referral(send, runtime, way) -> None:  # type: ignore[no-untyped-def]
    request, task_id = waiting(send, runtime, way.__name__)
    way(send, request, task_id)
    assert Worker(runtime).run_until_idle() >= 2  # evaluated again, then booked
    assert state(task_of(send, task_id)) == ("accepted", "booked")
    with runtime.unit_of_work(read_only=True) as uow:
        decision = uow.referrals.get(request).decision
    assert decision.category == "chronic-migraine"
    chronic = next(r for r in decision.reasons if r.rule == "category.chronic-migraine")
    assert any(e.startswith("QuestionnaireResponse/") for e in chronic.evidence)


def test_another_senders_answers_leave_it_waiting(send, over_http, runtime) -> None:  # type: ignore[no-untyped-def]
    request, task_id = waiting(send, runtime, "stranger")
    stranger = over_http("er-b")
    status, outcome = stranger(
        "POST", "/fhir/QuestionnaireResponse", answers(f"ServiceRequest/{request}"), HEADERS
    )
    assert status == 422, outcome
    assert outcome["issue"][0]["expression"] == ["QuestionnaireResponse.basedOn"]
    # In its own transaction the stranger's answers are only its own data: nothing resumes.
    by_transaction(stranger, request, task_id)
    status, outcome = stranger(
        "POST", "/fhir/$process-message", _message("cp-x", answers(f"Task/{task_id}")), HEADERS
    )
    assert status == 422, outcome
    assert Worker(runtime).run_until_idle() == 0
    assert state(task_of(send, task_id)) == ("on-hold", "needs-information")
