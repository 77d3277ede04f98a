"""Answers to the clinic's referral form the two other ways in (docs/referring/messaging.md,
placer-task.md), over real HTTP on SQLite and PostgreSQL: in a FHIR message (REF^I13, focus the
QuestionnaireResponse) and on a placer Task update (a contained response named by a new input,
or a response already pushed). Each brings a needs-information referral to its decision; a bad
answer each way is a 422 naming the item, and nothing is stored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from referral_service.adapters.db.tables import jobs, received_messages, stored_resources
from referral_service.fhir.validation import validate_resource
from referral_service.worker import Worker
from tests.integration.push.placer import Send
from tests.integration.push.test_form_answers import HEADERS, ed_referral, refer, state, task_of
from tests.support.form_answers import frequency, pregnancy, response

V2 = "http://terminology.hl7.org/CodeSystem/v2-0003"
QR_URL = "urn:uuid:7a1c0b52-2f3d-4e5f-8a9b-000000000001"
BAD_ITEM = "QuestionnaireResponse.item.where(linkId='headache-days-per-month')"


def _answers_count(engine) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(stored_resources)
    query = query.where(stored_resources.c.resource_type == "QuestionnaireResponse")
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def _waiting(send: Send, runtime, case: str) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    request, patient, task_id = refer(send, ed_referral(case))
    Worker(runtime).run_until_idle()
    assert state(task_of(send, task_id)) == ("on-hold", "needs-information")
    return request, patient, task_id


def _message(message_id: str, answers: dict[str, Any]) -> dict[str, Any]:
    header = {
        "resourceType": "MessageHeader",
        "id": f"hdr-{message_id}",
        "eventCoding": {"system": V2, "code": "I13"},
        "source": {"name": "ED", "endpoint": "https://ed.example.org/fhir/messages"},
        "focus": [{"reference": QR_URL}],
    }
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "entry": [
            {"fullUrl": "urn:uuid:7a1c0b52-2f3d-4e5f-8a9b-000000000000", "resource": header},
            {"fullUrl": QR_URL, "resource": answers},
        ],
    }


@pytest.fixture
def send(over_http) -> Send:  # type: ignore[no-untyped-def]
    return over_http("er-a")


def test_answers_in_a_message_decide_the_referral(send, runtime, engine) -> None:
    request, patient, task_id = _waiting(send, runtime, "41")
    answers = response(
        frequency(20, 12, 6),
        pregnancy(),
        subject={"reference": patient},
        basedOn=[{"reference": f"Task/{task_id}"}],  # the referral's Task names it too
    )
    status, body = send("POST", "/fhir/$process-message", _message("ans-1", answers), HEADERS)
    assert status == 200, body
    assert validate_resource(body) == []
    header = body["entry"][0]["resource"]
    assert header["response"] == {"identifier": "hdr-ans-1", "code": "ok"}
    assert header["eventCoding"] == {"system": V2, "code": "I13"}
    stored = body["entry"][1]["resource"]
    assert stored["resourceType"] == "QuestionnaireResponse"
    assert stored["basedOn"] == [{"reference": f"ServiceRequest/{request}"}]
    assert _answers_count(engine) == 1

    # A resend is answered the same and stores nothing more.
    again_status, again = send(
        "POST", "/fhir/$process-message", _message("ans-1", answers), HEADERS
    )
    assert (again_status, again) == (status, body)
    assert _answers_count(engine) == 1

    assert Worker(runtime).run_until_idle() >= 2  # evaluated again, then booked
    assert state(task_of(send, task_id)) == ("accepted", "booked")
    with runtime.unit_of_work(read_only=True) as uow:
        decision = uow.referrals.get(request).decision
    assert decision.category == "chronic-migraine"
    chronic = next(r for r in decision.reasons if r.rule == "category.chronic-migraine")
    assert f"QuestionnaireResponse/{stored['id']}" in chronic.evidence


def test_a_bad_answer_in_a_message_is_refused_and_stores_nothing(send, runtime, engine) -> None:
    request, patient, task_id = _waiting(send, runtime, "42")
    bad = response(
        frequency(45, 12),
        subject={"reference": patient},
        basedOn=[{"reference": f"ServiceRequest/{request}"}],
    )
    status, outcome = send("POST", "/fhir/$process-message", _message("ans-2", bad), HEADERS)
    assert status == 422, outcome
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [[BAD_ITEM]]
    assert outcome["issue"][0]["code"] == "value"
    assert _answers_count(engine) == 0
    with engine.connect() as conn:
        recorded = conn.execute(select(func.count()).select_from(received_messages)).scalar()
    assert recorded == 0  # a refusal is not recorded: the corrected message may reuse the id
    assert Worker(runtime).run_until_idle() == 0
    assert state(task_of(send, task_id)) == ("on-hold", "needs-information")


def test_answers_about_another_senders_referral_are_refused(send, over_http, runtime, engine):  # type: ignore[no-untyped-def]
    request, patient, task_id = _waiting(send, runtime, "46")
    theirs = response(frequency(20, 12, 6), basedOn=[{"reference": f"ServiceRequest/{request}"}])
    status, outcome = over_http("er-b")(
        "POST", "/fhir/$process-message", _message("ans-3", theirs), HEADERS
    )
    assert status == 422, outcome
    assert outcome["issue"][0]["expression"] == ["QuestionnaireResponse.basedOn"]
    assert _answers_count(engine) == 0
    assert state(task_of(send, task_id)) == ("on-hold", "needs-information")


def _contained_update(task: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    added = {"type": {"text": "referral form answers"}, "valueReference": {"reference": "#qr"}}
    return {
        **task,
        "contained": [{**answers, "id": "qr"}],
        "input": [*(task.get("input") or []), added],
    }


def test_contained_answers_on_a_task_put_decide_the_referral(send, runtime, engine) -> None:
    request, patient, task_id = _waiting(send, runtime, "43")
    task = task_of(send, task_id)
    answers = response(frequency(20, 12, 6), pregnancy())
    status, updated = send(
        "PUT", f"/fhir/Task/{task_id}", _contained_update(task, answers), HEADERS
    )
    assert status == 200, updated
    assert "contained" not in updated  # taken as the sender's QuestionnaireResponse
    named = updated["input"][-1]["valueReference"]["reference"]
    assert named.startswith("QuestionnaireResponse/")
    status, stored = send("GET", f"/fhir/{named}", None, {})
    assert status == 200 and stored["basedOn"] == [{"reference": f"ServiceRequest/{request}"}]
    assert stored["subject"] == {"reference": patient}
    assert Worker(runtime).run_until_idle() >= 2
    assert state(task_of(send, task_id)) == ("accepted", "booked")
    with runtime.unit_of_work(read_only=True) as uow:
        assert uow.referrals.get(request).decision.category == "chronic-migraine"


def _evaluations(engine, request: str) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(jobs)
    query = query.where(jobs.c.kind == "evaluate", jobs.c.referral_id == request)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_contained_answers_on_a_task_update_queue_one_evaluation(send, runtime, engine, method):  # type: ignore[no-untyped-def]
    request, patient, task_id = _waiting(send, runtime, f"49{len(method)}")
    before = _evaluations(engine, request)
    wanted = _contained_update(task_of(send, task_id), response(frequency(20, 12, 6), pregnancy()))
    if method == "PUT":
        status, updated = send(method, f"/fhir/Task/{task_id}", wanted, HEADERS)
    else:
        patch = [
            {"op": "add", "path": "/contained", "value": wanted["contained"]},
            {"op": "add", "path": "/input/-", "value": wanted["input"][-1]},
        ]
        headers = {"Content-Type": "application/json-patch+json"}
        status, updated = send(method, f"/fhir/Task/{task_id}", patch, headers)
    assert status == 200, updated
    assert _evaluations(engine, request) == before + 1
    assert Worker(runtime).run_until_idle() >= 2  # the one evaluation reads the answers
    assert state(task_of(send, task_id)) == ("accepted", "booked")


def test_bad_contained_answers_on_a_task_patch_are_refused(send, runtime, engine) -> None:
    request, patient, task_id = _waiting(send, runtime, "44")
    task = task_of(send, task_id)
    bad = {**response(frequency(45, 12)), "id": "qr"}
    patch = [
        {"op": "add", "path": "/contained", "value": [bad]},
        {
            "op": "add",
            "path": "/input/-",
            "value": {"type": {"text": "answers"}, "valueReference": {"reference": "#qr"}},
        },
    ]
    headers = {"Content-Type": "application/json-patch+json"}
    status, outcome = send("PATCH", f"/fhir/Task/{task_id}", patch, headers)
    assert status == 422, outcome
    assert [i["expression"] for i in outcome["issue"]] == [[BAD_ITEM]]
    # A contained resource no input names is refused too.
    stray = _contained_update(task, response(frequency(20, 12, 6), pregnancy()))
    stray["input"] = task["input"]
    status, outcome = send("PUT", f"/fhir/Task/{task_id}", stray, HEADERS)
    assert status == 422, outcome
    assert outcome["issue"][0]["expression"] == ["Task.contained[0]"]
    assert _answers_count(engine) == 0
    after = task_of(send, task_id)
    assert after["meta"]["versionId"] == task["meta"]["versionId"]
    assert Worker(runtime).run_until_idle() == 0
    assert state(after) == ("on-hold", "needs-information")


def test_a_pushed_response_named_by_a_new_input_counts_as_new_data(send, runtime) -> None:
    request, patient, task_id = _waiting(send, runtime, "45")
    answers = response(frequency(20, 12, 6), pregnancy())  # neither subject nor basedOn
    status, stored = send("POST", "/fhir/QuestionnaireResponse", answers, HEADERS)
    assert status == 201, stored
    assert Worker(runtime).run_until_idle() == 0  # nothing resumed by the push alone
    task = task_of(send, task_id)
    reference = f"QuestionnaireResponse/{stored['id']}"
    added = {"type": {"text": "answers"}, "valueReference": {"reference": reference}}
    wanted = {**task, "input": [*task["input"], added]}
    status, updated = send("PUT", f"/fhir/Task/{task_id}", wanted, HEADERS)
    assert status == 200, updated
    assert Worker(runtime).run_until_idle() >= 2
    assert state(task_of(send, task_id)) == ("accepted", "booked")


def test_the_same_answers_message_sent_twice_at_once_stores_once(send, runtime, engine) -> None:
    request, patient, task_id = _waiting(send, runtime, "47")
    answers = response(
        frequency(20, 12, 6), pregnancy(), basedOn=[{"reference": f"ServiceRequest/{request}"}]
    )
    message = _message("ans-4", answers)
    with ThreadPoolExecutor(max_workers=3) as pool:
        sent = list(
            pool.map(lambda _: send("POST", "/fhir/$process-message", message, HEADERS), range(3))
        )
    assert [status for status, _ in sent] == [200] * 3, sent
    assert all(body == sent[0][1] for _, body in sent)  # one recorded response, answered to all
    assert _answers_count(engine) == 1


def test_answers_for_a_referral_not_waiting_are_a_conflict(send, runtime, engine) -> None:
    request, patient, task_id = _waiting(send, runtime, "48")
    answers = response(
        frequency(20, 12, 6), pregnancy(), basedOn=[{"reference": f"ServiceRequest/{request}"}]
    )
    assert send("POST", "/fhir/$process-message", _message("ans-5", answers), HEADERS)[0] == 200
    Worker(runtime).run_until_idle()
    status, outcome = send("POST", "/fhir/$process-message", _message("ans-6", answers), HEADERS)
    assert status == 409, outcome
    assert outcome["issue"][0]["code"] == "conflict"
    assert _answers_count(engine) == 1
