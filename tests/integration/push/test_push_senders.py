"""Every pushed resource belongs to the system that sent it: another sender can neither read,
search, update nor reference it, and cannot adopt its referral's Task."""

from __future__ import annotations

from referral_service.worker import Worker
from tests.integration.push.placer import ER, Placer, chronic_migraine, days_per_month
from tests.support.referrals import FHIR_JSON


def test_a_second_sender_cannot_read_the_first_senders_patient(placer: Placer, as_sender) -> None:
    placer.register()
    patient = placer.made["patient"]
    other = as_sender("er-b")
    assert other("GET", f"/fhir/{patient}", None, {})[0] == 404
    status, found = other("GET", f"/fhir/Patient?_id={patient.split('/')[1]}", None, {})
    assert status == 200 and found["total"] == 0
    status, found = other("GET", f"/fhir/Patient?identifier={ER}/patient|patient-c1", None, {})
    assert status == 200 and found["total"] == 0
    status, _ = other("PUT", f"/fhir/{patient}", {"resourceType": "Patient"}, {})
    assert status == 404
    assert placer.ask("GET", f"/fhir/{patient}")["id"] == patient.split("/")[1]


def test_the_same_identifier_is_a_different_resource_for_another_sender(
    placer: Placer, as_sender
) -> None:
    placer.register()
    twin = Placer(as_sender("er-b"), case="c1")
    twin.register()
    assert twin.made["patient"] != placer.made["patient"]


def test_a_reference_to_another_senders_resources_is_missing_data(
    placer: Placer, as_sender, client, runtime
) -> None:
    placer.refer()
    thief = Placer(as_sender("er-b"), case="c2")
    thief.register()
    thief.made.update({key: placer.made[key] for key in ("condition", "headache", "migraine")})
    thief.made["patient"] = placer.made["patient"]  # the first sender's Patient, by id
    referral = thief.ask(
        "POST", "/fhir/ServiceRequest", thief.service_request(("headache", "migraine"))
    )
    Worker(runtime).run_until_idle()
    decision = client.get(f"/api/referrals/{referral['id']}").get_json()["decision"]
    evidence = {ref for reason in decision["reasons"] for ref in reason["evidence"]}
    assert not evidence & set(placer.made.values()), evidence
    assert decision["decision"] != "eligible", decision
    outcomes = {reason["rule"]: reason["outcome"] for reason in decision["reasons"]}
    assert outcomes["age.adult"] == "unknown"  # the other sender's Patient was not read


def test_a_task_cannot_adopt_another_senders_referral(placer: Placer, as_sender) -> None:
    placer.refer()
    thief = Placer(as_sender("er-b"), case="c1")
    thief.made["referral"] = placer.made["referral"]
    thief.made["patient"] = placer.made["patient"]
    status, outcome = thief.send("POST", "/fhir/Task", _task(placer), {"Content-Type": FHIR_JSON})
    assert status == 422, outcome
    assert outcome["issue"][0]["expression"] == ["Task.focus"]
    task = placer.ask("GET", f"/fhir/Task?focus={placer.made['referral']}")["entry"][0]
    assert len(task["resource"]["identifier"]) == 1  # the rightful placer's only
    query = f"/fhir/Task?identifier={ER}/tasks|task-c1"
    assert placer.ask("GET", query)["total"] == 1
    assert thief.send("GET", query, None, {})[1]["total"] == 0


def test_a_task_needs_a_focus_on_a_referral(placer: Placer) -> None:
    placer.register()
    subject = {"reference": placer.made["patient"]}
    condition = placer.clinical(chronic_migraine(subject), "condition")
    for focus in ({"reference": condition}, {"reference": "ServiceRequest/nope"}, None):
        body = {**_task(placer), "focus": focus}
        status, outcome = placer.send("POST", "/fhir/Task", body, {"Content-Type": FHIR_JSON})
        assert status == 422, (focus, outcome)
        assert outcome["resourceType"] == "OperationOutcome"


def test_a_placer_task_identifier_needs_a_system(placer: Placer) -> None:
    placer.refer()
    body = {**_task(placer), "identifier": [{"value": "no-system"}]}
    status, outcome = placer.send("POST", "/fhir/Task", body, {"Content-Type": FHIR_JSON})
    assert status == 422 and outcome["issue"][0]["expression"] == ["Task.identifier[0]"]


def test_one_placer_identifier_cannot_name_two_referrals_tasks(placer: Placer) -> None:
    placer.refer()
    first_referral = placer.made["referral"]
    placer.case = "c2"
    placer.refer()
    body = {**_task(placer), "focus": {"reference": first_referral}}
    body["identifier"] = [{"system": f"{ER}/tasks", "value": "task-c2"}]
    status, outcome = placer.send("POST", "/fhir/Task", body, {"Content-Type": FHIR_JSON})
    assert status == 409, outcome


def _task(placer: Placer) -> dict:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "identifier": [{"system": f"{ER}/tasks", "value": "stolen"}],
        "focus": {"reference": placer.made.get("referral", "ServiceRequest/unknown")},
    }


def test_days_per_month_helper_builds_an_observation() -> None:
    observation = days_per_month("headache-days-per-month", 3)({"reference": "Patient/1"})
    assert observation["valueInteger"] == 3
