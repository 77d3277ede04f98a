"""A referral pushed resource by resource (BSeR REST push), through the whole local path: the
placer's Task turns accepted and the referral is booked, evaluated with every pushed resource."""

from __future__ import annotations

from referral_service.worker import Worker
from tests.integration.push.placer import ER, PLAC, Placer


def _decision(client, referral: str) -> dict:
    return client.get(f"/api/referrals/{referral.split('/')[1]}").get_json()["decision"]


def test_pushed_referral_is_evaluated_with_its_resources_and_booked(
    placer: Placer, client, runtime
) -> None:
    task_id = placer.refer()
    assert Worker(runtime).run_until_idle() >= 2

    found = placer.ask("GET", f"/fhir/Task?_id={task_id}&status=accepted")
    assert found["total"] == 1, found
    task = found["entry"][0]["resource"]
    assert task["businessStatus"]["coding"][0]["code"] == "booked", task
    assert task["focus"]["reference"] == placer.made["referral"]
    assert task["identifier"][0]["type"]["coding"][0]["code"] == "PLAC"
    assert task["identifier"][0]["type"]["coding"][0]["system"] == PLAC
    evidence = {
        ref for r in _decision(client, placer.made["referral"])["reasons"] for ref in r["evidence"]
    }
    for key in ("condition", "headache", "migraine"):
        assert placer.made[key] in evidence, (key, evidence)


def test_the_same_placer_twice_makes_no_duplicates(placer: Placer, as_sender) -> None:
    first_task = placer.refer()
    first = dict(placer.made)
    again = Placer(as_sender("er-a"), case="c1")
    assert again.refer() == first_task
    assert again.made == first
    for kind in ("Organization", "Practitioner", "Patient", "Condition", "Observation"):
        assert again.ask("GET", f"/fhir/{kind}")["total"] == (2 if kind == "Observation" else 1)
    assert again.ask("GET", "/fhir/ServiceRequest")["total"] == 1
    task = again.ask("GET", f"/fhir/Task/{first_task}")
    assert len(task["identifier"]) == 1
    by_identifier = again.ask("GET", f"/fhir/Task?identifier={ER}/tasks|task-c1")
    assert [e["resource"]["id"] for e in by_identifier["entry"]] == [first_task]


def test_a_task_is_followed_through_its_moves(placer: Placer, runtime) -> None:
    task_id = placer.refer()
    received = placer.ask("GET", f"/fhir/Task/{task_id}")
    assert received["status"] == "received"
    assert placer.ask("GET", f"/fhir/Task?_id={task_id}&status=accepted")["total"] == 0
    Worker(runtime).run_until_idle()
    booked = placer.ask("GET", f"/fhir/Task/{task_id}")
    assert booked["status"] == "accepted"
    assert int(booked["meta"]["versionId"]) > int(received["meta"]["versionId"])
    assert booked["identifier"] == received["identifier"]  # kept across the worker's rewrites
