"""A transaction or batch Bundle carrying the ServiceRequest and the placer's own Task (BSeR, the
FHIR workflow "Task with focus" pattern), over real HTTP on SQLite and PostgreSQL: the Task is
adopted as the referral's (no second Task), all or nothing, idempotent on a resend."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from referral_service.worker import Worker
from tests.integration.push.placer import ER, OBSERVATIONS, PLAC, Placer, chronic_migraine, patient

SR_URL = "urn:uuid:7f2c1a9e-0000-4000-8000-000000000001"


def _bundle(kind: str = "transaction", case: str = "b1") -> dict[str, Any]:
    subject = {"reference": "urn:uuid:patient-1"}
    supporting = [
        ("urn:uuid:patient-1", patient()),
        ("urn:uuid:condition-1", chronic_migraine(subject)),
        ("urn:uuid:headache-1", OBSERVATIONS["headache"](subject)),
        ("urn:uuid:migraine-1", OBSERVATIONS["migraine"](subject)),
    ]
    referral = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": f"{ER}/referrals", "value": f"sr-{case}"}],
        "status": "active",
        "intent": "order",
        "subject": subject,
        "authoredOn": "2026-11-23T09:00:00Z",
        "reasonReference": [{"reference": "urn:uuid:condition-1"}],
        "supportingInfo": [
            {"reference": "urn:uuid:headache-1"},
            {"reference": "urn:uuid:migraine-1"},
        ],
    }
    task = {
        "resourceType": "Task",
        "identifier": [{"system": f"{ER}/tasks", "value": f"task-{case}"}],
        "status": "requested",
        "intent": "order",
        "focus": {"reference": SR_URL},
        "for": subject,
    }
    # The Task first: it names a ServiceRequest the Bundle makes further down.
    entries = [("urn:uuid:task-1", task), *supporting, (SR_URL, referral)]
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
            for url, resource in entries
        ],
    }


@pytest.fixture
def er_a(over_http) -> Placer:  # type: ignore[no-untyped-def]
    return Placer(over_http("er-a"), case="b1")


def _location(answer: dict[str, Any], index: int) -> list[str]:
    """[type, id, version] of one response entry's Location."""
    parts = answer["entry"][index]["response"]["location"].split("/fhir/")[1].split("/")
    return [parts[0], parts[1], parts[3]]


def test_a_transaction_with_the_placers_task_adopts_it(er_a: Placer, runtime) -> None:
    answer = er_a.ask("POST", "/fhir", _bundle())
    assert answer["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created"] * 6, statuses
    kind, task_id, version = _location(answer, 0)
    sr_kind, referral_id, _ = _location(answer, 5)
    assert (kind, sr_kind) == ("Task", "ServiceRequest")
    assert answer["entry"][0]["response"]["etag"] == f'W/"{version}"'

    tasks = er_a.ask("GET", f"/fhir/Task?focus=ServiceRequest/{referral_id}")
    assert tasks["total"] == 1, tasks
    task = tasks["entry"][0]["resource"]
    assert task["id"] == task_id and task["meta"]["versionId"] == version
    assert task["identifier"] == [
        {
            "system": f"{ER}/tasks",
            "value": "task-b1",
            "type": {"coding": [{"system": PLAC, "code": "PLAC", "display": "Placer Identifier"}]},
        }
    ]
    found = er_a.ask("GET", f"/fhir/Task?identifier={ER}/tasks|task-b1")
    assert [e["resource"]["id"] for e in found["entry"]] == [task_id]

    Worker(runtime).run_until_idle()
    booked = er_a.ask("GET", f"/fhir/Task/{task_id}")
    assert booked["businessStatus"]["text"] == "booked", booked
    assert booked["identifier"] == task["identifier"]  # kept across the worker's rewrites


def test_a_resent_transaction_makes_nothing_new(er_a: Placer) -> None:
    first = er_a.ask("POST", "/fhir", _bundle())
    again = er_a.ask("POST", "/fhir", _bundle())
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] + ["201 Created"] * 4 + [
        "200 OK"
    ]
    assert _location(again, 0) == _location(first, 0)  # same Task, same version
    assert _location(again, 5)[1] == _location(first, 5)[1]
    assert er_a.ask("GET", "/fhir/Task")["total"] == 1
    assert er_a.ask("GET", "/fhir/ServiceRequest")["total"] == 1
    task = er_a.ask("GET", f"/fhir/Task/{_location(first, 0)[1]}")
    assert len(task["identifier"]) == 1


def _refused(send, bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    status, answer = send("POST", "/fhir", bundle, {"Content-Type": "application/fhir+json"})
    assert answer["resourceType"] == "OperationOutcome", answer
    return status, answer


def _nothing_stored(placer: Placer) -> None:
    for kind in ("ServiceRequest", "Task", "Patient", "Observation"):
        assert placer.ask("GET", f"/fhir/{kind}")["total"] == 0, kind


def test_a_bad_entry_leaves_nothing_of_the_transaction(er_a: Placer) -> None:
    bundle = _bundle()
    bundle["entry"][3]["resource"]["valueInteger"] = "many"  # not an integer
    status, answer = _refused(er_a.send, bundle)
    assert status == 422
    assert any("entry[3]" in e for i in answer["issue"] for e in i.get("expression", []))
    _nothing_stored(er_a)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda task: task.update(identifier=[{"system": f"{ER}/tasks"}]), "identifier"),
        (lambda task: task.update(focus={"reference": "Patient/x"}), "focus"),
        (lambda task: task.update(focus={"reference": "ServiceRequest/not-here"}), "focus"),
        (lambda task: task.update(status="wished"), "status"),
    ],
)
def test_a_bad_placer_task_leaves_nothing_of_the_transaction(
    er_a: Placer, change: Any, where: str
) -> None:
    bundle = _bundle()
    change(bundle["entry"][0]["resource"])
    status, answer = _refused(er_a.send, bundle)
    assert status == 422, answer
    assert any(where in e for i in answer["issue"] for e in i.get("expression", [])), answer
    _nothing_stored(er_a)


def test_a_task_entry_must_be_posted(er_a: Placer) -> None:
    bundle = _bundle()
    bundle["entry"][0]["request"] = {"method": "PUT", "url": "Task/abc"}
    status, answer = _refused(er_a.send, bundle)
    assert status == 422 and answer["issue"][0]["code"] == "not-supported"
    _nothing_stored(er_a)


def test_another_senders_referral_cannot_be_adopted(er_a: Placer, over_http) -> None:
    made = er_a.ask("POST", "/fhir", _bundle())
    referral_id = _location(made, 5)[1]
    er_b = Placer(over_http("er-b"), case="b1")
    bundle = _bundle(case="other")
    bundle["entry"][0]["resource"]["focus"] = {"reference": f"ServiceRequest/{referral_id}"}
    status, _ = _refused(er_b.send, bundle)
    assert status == 422
    _nothing_stored(er_b)
    task = er_a.ask("GET", f"/fhir/Task/{_location(made, 0)[1]}")
    assert [i["value"] for i in task["identifier"]] == ["task-b1"]


def test_a_batch_adopts_the_task_and_answers_entry_by_entry(er_a: Placer) -> None:
    answer = er_a.ask("POST", "/fhir", _bundle("batch"))
    assert answer["type"] == "batch-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 6
    referral_id = _location(answer, 5)[1]
    tasks = er_a.ask("GET", f"/fhir/Task?focus=ServiceRequest/{referral_id}")
    assert [e["resource"]["id"] for e in tasks["entry"]] == [_location(answer, 0)[1]]

    again = er_a.ask("POST", "/fhir", _bundle("batch"))
    assert again["entry"][0]["response"]["status"] == "200 OK"
    assert _location(again, 0) == _location(answer, 0)


def test_in_a_batch_the_task_of_a_refused_referral_is_refused(er_a: Placer) -> None:
    bundle = _bundle("batch")
    referral = bundle["entry"][5]["resource"]
    bundle["entry"][5]["resource"] = {**copy.deepcopy(referral), "intent": None}
    del bundle["entry"][5]["resource"]["intent"]
    answer = er_a.ask("POST", "/fhir", bundle)
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses[5].startswith("422") and statuses[0].startswith("422"), statuses
    outcome = answer["entry"][0]["response"]["outcome"]
    assert "focus" in outcome["issue"][0]["expression"][0]
    assert er_a.ask("GET", "/fhir/Task")["total"] == 0
