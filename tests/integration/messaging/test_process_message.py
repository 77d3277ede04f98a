"""$process-message over real HTTP, on SQLite and PostgreSQL: referral messages (ServiceRequest
focus, BSeR Task focus), Patient registration, an unknown event answered fatal-error, resends
answered the same without a second referral, and two senders kept apart."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from referral_service.adapters.db.tables import (
    received_messages,
    referrals,
    stored_resources,
    tasks,
)
from referral_service.fhir.validation import validate_resource
from referral_service.worker import Worker
from tests.integration.messaging.conftest import (
    V2,
    referral_message,
    registration_message,
    task_message,
)

PLAC = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def _header(body: dict) -> dict:
    assert body["resourceType"] == "Bundle" and body["type"] == "message", body
    assert validate_resource(body) == []  # a valid R4 message Bundle, its entries too
    first = body["entry"][0]["resource"]
    assert first["resourceType"] == "MessageHeader"
    return first


def test_referral_message_with_service_request_focus(post_message, get, engine, runtime) -> None:
    response = post_message(referral_message())
    assert response.status_code == 200, response.text
    body = response.json()
    header = _header(body)
    assert header["response"] == {"identifier": "hdr-1", "code": "ok"}
    assert header["destination"] == [{"endpoint": "https://ed.example.org/fhir/messages"}]
    assert header["source"]["endpoint"].endswith("/fhir/$process-message")
    assert header["eventCoding"] == {"system": V2, "code": "I12"}
    task = body["entry"][1]["resource"]
    assert header["focus"] == [{"reference": body["entry"][1]["fullUrl"]}]
    assert task["resourceType"] == "Task" and task["status"] == "received"
    referral_id = task["focus"]["reference"].split("/")[1]
    assert _count(engine, referrals) == 1
    assert _count(engine, stored_resources) == 4  # Patient, Condition, two Observations
    stored = get(f"/fhir/ServiceRequest/{referral_id}").json()
    assert stored["subject"]["reference"].startswith("Patient/")

    # Taken in like a REST referral: the worker decides it and books it.
    Worker(runtime).run_until_idle()
    decided = get(f"/fhir/Task/{task['id']}").json()
    assert decided["businessStatus"]["coding"][0]["code"] == "booked", decided.get("note")


def test_referral_message_with_placer_task_focus(post_message, get, engine) -> None:
    response = post_message(task_message())
    assert response.status_code == 200, response.text
    body = response.json()
    assert _header(body)["response"]["code"] == "ok"
    task = body["entry"][1]["resource"]
    placer = [i for i in task["identifier"] if i.get("system") == "https://ed.example.org/tasks"]
    assert placer and placer[0]["value"] == "task-msg-ref-2"
    assert placer[0]["type"]["coding"][0] == {
        "system": PLAC,
        "code": "PLAC",
        "display": "Placer Identifier",
    }
    assert _count(engine, tasks) == 1  # the placer's Task is adopted, not stored as a second
    found = get("/fhir/Task?identifier=https://ed.example.org/tasks|task-msg-ref-2").json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [task["id"]]


def test_patient_registration_stores_the_patient(post_message, get, engine) -> None:
    response = post_message(registration_message())
    assert response.status_code == 200, response.text
    body = response.json()
    assert _header(body)["response"]["code"] == "ok"
    patient = body["entry"][1]["resource"]
    assert patient["resourceType"] == "Patient" and patient["id"] != "ed-patient-7"
    assert get(f"/fhir/Patient/{patient['id']}").json()["name"] == [{"family": "Registered"}]
    assert _count(engine, referrals) == 0
    # The REST push's rule: the same identifier again is the same Patient.
    again = post_message(registration_message("msg-reg-2", event="A28"))
    assert again.json()["entry"][1]["resource"]["id"] == patient["id"]
    assert _count(engine, stored_resources) == 1


def test_unknown_event_is_answered_fatal_error(post_message, engine) -> None:
    message = referral_message("msg-odd")
    message["entry"][0]["resource"]["eventCoding"] = {"system": V2, "code": "O21"}
    response = post_message(message)
    assert response.status_code == 200, response.text
    body = response.json()
    header = _header(body)
    assert header["response"]["code"] == "fatal-error"
    details = header["response"]["details"]["reference"]
    outcome = next(e["resource"] for e in body["entry"] if e["fullUrl"] == details)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"
    assert "O21" in outcome["issue"][0]["diagnostics"]
    assert _count(engine, referrals) == 0
    assert _count(engine, stored_resources) == 0


def test_a_resend_gets_the_same_response_and_creates_nothing(post_message, engine) -> None:
    first = post_message(referral_message())
    second = post_message(referral_message())
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert _count(engine, referrals) == 1
    assert _count(engine, tasks) == 1
    assert _count(engine, stored_resources) == 4
    assert _count(engine, received_messages) == 1
    # A fatal-error answer is kept too: the same message again is answered the same.
    odd = referral_message("msg-odd")
    odd["entry"][0]["resource"]["eventCoding"]["code"] = "O21"
    assert post_message(odd).json() == post_message(odd).json()


def test_two_senders_are_kept_apart(post_message, get, engine) -> None:
    from_a = post_message(referral_message(), sender="er-a").json()
    from_b = post_message(referral_message(), sender="er-b").json()
    task_a, task_b = from_a["entry"][1]["resource"], from_b["entry"][1]["resource"]
    assert task_a["id"] != task_b["id"]  # same message id and identifier, two senders
    assert _count(engine, referrals) == 2
    assert get(f"/fhir/Task/{task_a['id']}", sender="er-b").status_code == 404
    assert get(f"/fhir/Task/{task_b['id']}", sender="er-b").status_code == 200


def test_capability_statement_lists_the_operation_and_messaging(get) -> None:
    statement = get("/fhir/metadata").json()
    operations = statement["rest"][0]["operation"]
    assert {
        "name": "process-message",
        "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
    } in operations
    messaging = statement["messaging"][0]
    assert messaging["endpoint"][0]["address"].endswith("/fhir/$process-message")
    assert len(messaging["supportedMessage"]) == 3  # referral, registration, form answers
    assert {
        "mode": "receiver",
        "definition": "https://referral-service.dev/MessageDefinition/referral-form-answers",
    } in messaging["supportedMessage"]
    for code in ("I12", "I13", "A04", "A28", "admin-notify"):
        assert code in messaging["documentation"]


def test_the_documented_examples_are_accepted(post_message) -> None:
    examples = Path(__file__).parents[3] / "examples" / "messaging"
    for name in ("referral-message.json", "registration-message.json"):
        response = post_message(json.loads((examples / name).read_text()))
        assert response.status_code == 200, (name, response.text)
        assert _header(response.json())["response"]["code"] == "ok", name


def test_the_same_message_sent_twice_at_once_makes_one_referral(post_message, engine) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post_message(referral_message()), range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert all(body == bodies[0] for body in bodies)  # one recorded response, answered to all
    assert _count(engine, referrals) == 1
    assert _count(engine, received_messages) == 1
