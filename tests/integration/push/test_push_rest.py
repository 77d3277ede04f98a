"""The REST interactions on pushed resources: create, conditional create, read, vread, update
with If-Match, search, headers, Prefer, and the CapabilityStatement."""

from __future__ import annotations

import threading

from tests.integration.push.placer import ER, Placer, chronic_migraine, patient
from tests.support.referrals import FHIR_JSON

MRN = f"{ER}/mrn"


def _patient(value: str = "mrn-1", **extra: object) -> dict:
    return {**patient(), "identifier": [{"system": MRN, "value": value}], **extra}


def test_create_answers_201_with_location_and_etag(client) -> None:
    response = client.post("/fhir/Patient", json=_patient(), headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert body["meta"]["versionId"] == "1"
    read = client.get(f"/fhir/Patient/{body['id']}")
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'
    assert read.get_json()["birthDate"] == "1980-04-02"
    assert client.get(f"/fhir/Patient/{body['id']}/_history/1").status_code == 200


def test_prefer_shapes_the_answer(client) -> None:
    headers = {"Content-Type": FHIR_JSON, "Prefer": "return=minimal"}
    minimal = client.post("/fhir/Patient", json=_patient("a"), headers=headers)
    assert minimal.status_code == 201 and minimal.data == b""
    assert minimal.headers["Location"]
    headers["Prefer"] = "return=OperationOutcome"
    outcome = client.post("/fhir/Patient", json=_patient("b"), headers=headers)
    assert outcome.get_json()["resourceType"] == "OperationOutcome"


def test_conditional_create_returns_the_existing_resource(client) -> None:
    headers = {"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier={MRN}|mrn-1"}
    first = client.post("/fhir/Patient", json=_patient(), headers=headers)
    changed = _patient(gender="female")
    again = client.post("/fhir/Patient", json=changed, headers=headers)
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["gender"] == "male"  # If-None-Exist never changes what exists
    assert client.get("/fhir/Patient").get_json()["total"] == 1


def test_the_same_identifier_without_the_header_gives_a_new_version(client) -> None:
    headers = {"Content-Type": FHIR_JSON}
    first = client.post("/fhir/Patient", json=_patient(), headers=headers).get_json()
    same = client.post("/fhir/Patient", json=_patient(), headers=headers)
    assert same.status_code == 200 and same.headers["ETag"] == 'W/"1"'
    changed = client.post("/fhir/Patient", json=_patient(gender="female"), headers=headers)
    assert changed.status_code == 200 and changed.headers["ETag"] == 'W/"2"'
    assert changed.get_json()["id"] == first["id"]
    assert client.get(f"/fhir/Patient/{first['id']}/_history/1").status_code == 404


def test_concurrent_conditional_creates_make_one_resource(app) -> None:
    headers = {"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier={MRN}|race"}
    answers: list[tuple[int, str]] = []

    def post() -> None:
        response = app.test_client().post("/fhir/Patient", json=_patient("race"), headers=headers)
        answers.append((response.status_code, response.get_json()["id"]))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({resource_id for _, resource_id in answers}) == 1, answers
    assert sorted(status for status, _ in answers) == [200] * 5 + [201]
    assert app.test_client().get("/fhir/Patient").get_json()["total"] == 1


def test_update_checks_if_match(client) -> None:
    headers = {"Content-Type": FHIR_JSON}
    created = client.post("/fhir/Patient", json=_patient(), headers=headers).get_json()
    path = f"/fhir/Patient/{created['id']}"
    update = {**created, "gender": "female"}
    ok = client.put(path, json=update, headers={**headers, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == 'W/"2"'
    assert ok.headers["Location"].endswith(f"{path}/_history/2")
    stale = client.put(path, json=update, headers={**headers, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"
    garbled = client.put(path, json=update, headers={**headers, "If-Match": "yesterday"})
    assert garbled.status_code == 412
    assert client.get(path).get_json()["gender"] == "female"


def test_update_refuses_what_it_cannot_do(client) -> None:
    headers = {"Content-Type": FHIR_JSON}
    first = client.post("/fhir/Patient", json=_patient("one"), headers=headers).get_json()
    second = client.post("/fhir/Patient", json=_patient("two"), headers=headers).get_json()
    mismatch = client.put(f"/fhir/Patient/{first['id']}", json=second, headers=headers)
    assert mismatch.status_code == 422
    unknown = client.put("/fhir/Patient/unknown", json=_patient("three"), headers=headers)
    assert unknown.status_code == 404
    taken = {**second, "identifier": first["identifier"]}
    clash = client.put(f"/fhir/Patient/{second['id']}", json=taken, headers=headers)
    assert clash.status_code == 409
    assert client.delete(f"/fhir/Patient/{first['id']}").status_code == 405


def test_search_by_id_identifier_patient_and_subject(placer: Placer) -> None:
    placer.register()
    subject = {"reference": placer.made["patient"]}
    condition = placer.clinical(chronic_migraine(subject), "condition")
    patient_id = placer.made["patient"].split("/")[1]
    other = Placer(placer.send, case="c2")
    other.register()
    other.clinical(chronic_migraine({"reference": other.made["patient"]}), "condition")

    def ids(query: str) -> list[str]:
        found = placer.ask("GET", f"/fhir/{query}")
        return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in found["entry"]]

    assert ids(f"Patient?_id={patient_id}") == [placer.made["patient"]]
    assert ids(f"Patient?identifier={ER}/patient|patient-c1") == [placer.made["patient"]]
    assert ids("Patient?identifier=patient-c1") == [placer.made["patient"]]
    assert ids(f"Condition?patient={patient_id}") == [condition]
    assert ids(f"Condition?subject=Patient/{patient_id}") == [condition]
    assert len(ids("Condition")) == 2
    assert len(ids("Condition?_count=1")) == 1
    strict = {"Prefer": "handling=strict"}
    status, outcome = placer.send("GET", f"/fhir/Patient?patient={patient_id}", None, strict)
    assert status == 400 and outcome["resourceType"] == "OperationOutcome"


def test_capability_statement_lists_the_pushed_types(client) -> None:
    entries = {e["type"]: e for e in client.get("/fhir/metadata").get_json()["rest"][0]["resource"]}
    for kind in (
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationStatement",
        "MedicationRequest",
        "AllergyIntolerance",
        "DiagnosticReport",
        "QuestionnaireResponse",
    ):
        interactions = {i["code"] for i in entries[kind]["interaction"]}
        assert {"create", "read", "update", "search-type"} <= interactions
        params = {p["name"] for p in entries[kind]["searchParam"]}
        assert {"_id", "identifier"} <= params
        assert ("patient" in params) == (
            kind not in ("Patient", "Practitioner", "PractitionerRole", "Organization")
        )
        assert entries[kind]["conditionalCreate"] is True
    task = entries["Task"]
    assert "create" in {i["code"] for i in task["interaction"]}
    assert "identifier" in {p["name"] for p in task["searchParam"]}
    assert "ServiceRequest" in entries


def test_unknown_types_are_not_found(client) -> None:
    response = client.post(
        "/fhir/Foo", json={"resourceType": "Foo"}, headers={"Content-Type": FHIR_JSON}
    )
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"
