"""The placer changes its referral through the referral's Task (PUT, PATCH with JSON Patch),
over real HTTP on SQLite and PostgreSQL: cancel, If-Match, the clinic's fields refused by name,
another sender's Task unknown, new input references re-evaluating an on-hold referral."""

from __future__ import annotations

from typing import Any

import pytest

from referral_service.worker import Worker
from tests.integration.push.placer import ER, OBSERVATIONS, Placer

JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def er_a(over_http) -> Placer:  # type: ignore[no-untyped-def]
    return Placer(over_http("er-a"), case="u1")


def _send(placer: Placer, method: str, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    return placer.send(method, path, body, {"Content-Type": "application/fhir+json", **headers})


def _outcome(answer: Any, status: int, got: int) -> list[dict[str, Any]]:
    assert got == status, (got, answer)
    assert answer["resourceType"] == "OperationOutcome", answer
    return list(answer["issue"])


def _appointment(placer: Placer, referral: str) -> dict[str, Any]:
    found = placer.ask("GET", f"/fhir/Appointment?based-on={referral}")
    assert found["total"] == 1, found
    return dict(found["entry"][0]["resource"])


def test_put_cancelled_cancels_the_referral_and_its_appointment(er_a: Placer, runtime) -> None:
    task_id = er_a.refer()
    Worker(runtime).run_until_idle()
    task = er_a.ask("GET", f"/fhir/Task/{task_id}")
    assert task["businessStatus"]["text"] == "booked"
    assert _appointment(er_a, er_a.made["referral"])["status"] == "booked"

    reason = {"text": "the patient chose another clinic"}
    wanted = {**task, "status": "cancelled", "statusReason": reason}
    version = task["meta"]["versionId"]
    status, cancelled = _send(
        er_a, "PUT", f"/fhir/Task/{task_id}", wanted, **{"If-Match": f'W/"{version}"'}
    )
    assert status == 200, cancelled
    assert cancelled["status"] == "cancelled" and cancelled["businessStatus"]["text"] == "cancelled"
    assert int(cancelled["meta"]["versionId"]) > int(version)
    assert any("another clinic" in note["text"] for note in cancelled["note"])
    Worker(runtime).run_until_idle()
    assert _appointment(er_a, er_a.made["referral"])["status"] == "cancelled"
    after = er_a.ask("GET", f"/fhir/Task/{task_id}")
    assert after["status"] == "cancelled" and "output" not in after

    # A resend changes nothing (its statusReason may say it again).
    status, again = _send(er_a, "PUT", f"/fhir/Task/{task_id}", {**after, "statusReason": reason})
    assert status == 200 and again["meta"]["versionId"] == after["meta"]["versionId"]


def test_a_stale_if_match_is_412_and_changes_nothing(er_a: Placer, runtime) -> None:
    task_id = er_a.refer()
    task = er_a.ask("GET", f"/fhir/Task/{task_id}")
    Worker(runtime).run_until_idle()  # the clinic moves the Task on
    wanted = {**task, "status": "cancelled"}
    status, answer = _send(
        er_a,
        "PUT",
        f"/fhir/Task/{task_id}",
        wanted,
        **{"If-Match": f'W/"{task["meta"]["versionId"]}"'},
    )
    _outcome(answer, 412, status)
    assert er_a.ask("GET", f"/fhir/Task/{task_id}")["status"] == "accepted"
    status, answer = _send(
        er_a,
        "PATCH",
        f"/fhir/Task/{task_id}",
        [],
        **{"Content-Type": JSON_PATCH, "If-Match": 'W/"1"'},
    )
    _outcome(answer, 412, status)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("businessStatus", {"text": "booked"}),
        ("output", [{"type": {"text": "x"}, "valueReference": {"reference": "Appointment/x"}}]),
        ("owner", {"reference": "Organization/somewhere"}),
        ("status", "completed"),
        ("status", "accepted"),
        ("focus", {"reference": "ServiceRequest/other"}),
        ("priority", "stat"),
    ],
)
def test_a_field_the_clinic_owns_is_422_naming_it(er_a: Placer, field: str, value: Any) -> None:
    task_id = er_a.refer()
    task = er_a.ask("GET", f"/fhir/Task/{task_id}")
    status, answer = _send(er_a, "PUT", f"/fhir/Task/{task_id}", {**task, field: value})
    issues = _outcome(answer, 422, status)
    assert [i["expression"] for i in issues] == [[f"Task.{field}"]], issues
    assert issues[0]["code"] == "business-rule"
    assert er_a.ask("GET", f"/fhir/Task/{task_id}") == task  # nothing changed


def test_another_senders_task_is_not_found(er_a: Placer, over_http, runtime) -> None:
    task_id = er_a.refer()
    task = er_a.ask("GET", f"/fhir/Task/{task_id}")
    er_b = Placer(over_http("er-b"), case="u1")
    status, answer = _send(er_b, "PUT", f"/fhir/Task/{task_id}", {**task, "status": "cancelled"})
    assert _outcome(answer, 404, status)[0]["code"] == "not-found"
    patch = [{"op": "replace", "path": "/status", "value": "cancelled"}]
    status, answer = _send(
        er_b, "PATCH", f"/fhir/Task/{task_id}", patch, **{"Content-Type": JSON_PATCH}
    )
    _outcome(answer, 404, status)
    status, answer = _send(er_a, "PUT", "/fhir/Task/no-such-task", {**task, "id": "no-such-task"})
    _outcome(answer, 404, status)
    assert er_a.ask("GET", f"/fhir/Task/{task_id}") == task


def test_patch_adds_an_identifier_and_cancels(er_a: Placer, runtime) -> None:
    task_id = er_a.refer()
    path = f"/fhir/Task/{task_id}"
    more = {"system": f"{ER}/orders", "value": "order-u1"}
    status, patched = _send(
        er_a,
        "PATCH",
        path,
        [{"op": "add", "path": "/identifier/-", "value": more}],
        **{"Content-Type": JSON_PATCH, "If-Match": 'W/"2"'},
    )
    assert status == 200, patched
    assert [i["value"] for i in patched["identifier"]] == ["task-u1", "order-u1"]
    assert patched["identifier"][1]["type"]["coding"][0]["code"] == "PLAC"
    found = er_a.ask("GET", f"/fhir/Task?identifier={ER}/orders|order-u1")
    assert [e["resource"]["id"] for e in found["entry"]] == [task_id]

    refused = [{"op": "replace", "path": "/businessStatus/text", "value": "booked"}]
    status, answer = _send(er_a, "PATCH", path, refused, **{"Content-Type": JSON_PATCH})
    assert _outcome(answer, 422, status)[0]["expression"] == ["Task.businessStatus"]
    failed_test = [{"op": "test", "path": "/status", "value": "completed"}]
    status, answer = _send(er_a, "PATCH", path, failed_test, **{"Content-Type": JSON_PATCH})
    _outcome(answer, 422, status)
    status, answer = _send(er_a, "PATCH", path, failed_test)  # not a JSON Patch media type
    _outcome(answer, 415, status)

    cancel = [
        {"op": "replace", "path": "/status", "value": "cancelled"},
        {"op": "add", "path": "/statusReason", "value": {"text": "duplicate order"}},
    ]
    status, answer = _send(er_a, "PATCH", path, cancel, **{"Content-Type": JSON_PATCH})
    assert status == 200 and answer["status"] == "cancelled", answer
    Worker(runtime).run_until_idle()
    assert er_a.ask("GET", path)["businessStatus"]["text"] == "cancelled"
    assert er_a.ask("GET", f"/fhir/Appointment?based-on={er_a.made['referral']}")["total"] == 0


def test_a_new_input_reference_re_evaluates_an_on_hold_referral(er_a: Placer, runtime) -> None:
    task_id = er_a.refer(observations=("headache",))
    Worker(runtime).run_until_idle()
    task = er_a.ask("GET", f"/fhir/Task/{task_id}")
    assert (task["status"], task["businessStatus"]["text"]) == ("on-hold", "needs-information")

    # The migraine count, pushed without naming the patient: only the Task's input brings it in.
    unlinked = {k: v for k, v in OBSERVATIONS["migraine"]({}).items() if k != "subject"}
    reference = er_a.clinical(unlinked, "migraine")
    assert Worker(runtime).run_until_idle() == 0  # nothing resumed by the push alone
    added = {"type": {"text": "migraine days"}, "valueReference": {"reference": reference}}
    wanted = {**task, "input": [*task["input"], added]}
    status, answer = _send(er_a, "PUT", f"/fhir/Task/{task_id}", wanted)
    assert status == 200, answer
    assert added in answer["input"]
    assert Worker(runtime).run_until_idle() >= 2  # evaluate, then book
    booked = er_a.ask("GET", f"/fhir/Task/{task_id}")
    assert (booked["status"], booked["businessStatus"]["text"]) == ("accepted", "booked")
    assert added in booked["input"]  # the placer's input stays across the clinic's rewrites


def test_an_input_naming_what_the_sender_did_not_push_is_refused(
    er_a: Placer,
    over_http,
) -> None:
    task_id = er_a.refer(observations=("headache",))
    task = er_a.ask("GET", f"/fhir/Task/{task_id}")
    er_b = Placer(over_http("er-b"), case="u1")
    theirs = er_b.clinical(OBSERVATIONS["migraine"]({}), "migraine")
    for reference in (theirs, "Observation/nothing-here"):
        added = {"type": {"text": "x"}, "valueReference": {"reference": reference}}
        status, answer = _send(
            er_a, "PUT", f"/fhir/Task/{task_id}", {**task, "input": [*task.get("input", []), added]}
        )
        _outcome(answer, 422, status)
    assert er_a.ask("GET", f"/fhir/Task/{task_id}") == task


def test_the_capability_statement_says_task_update_and_patch(er_a: Placer) -> None:
    statement = er_a.ask("GET", "/fhir/metadata")
    (task,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Task"]
    codes = [i["code"] for i in task["interaction"]]
    assert sorted(codes) == ["create", "patch", "read", "search-type", "update"]
    assert task["versioning"] == "versioned-update" and task["updateCreate"] is False
    # Truthful: neither is a 405 (the answer to an unknown Task is the 404 of a real handler).
    for method, body, kind in (
        ("PUT", {"resourceType": "Task", "status": "requested", "intent": "order"}, None),
        ("PATCH", [], JSON_PATCH),
    ):
        headers = {"Content-Type": kind} if kind else {}
        status, answer = _send(er_a, method, "/fhir/Task/nothing", body, **headers)
        assert _outcome(answer, 404, status)[0]["code"] == "not-found"
