"""Intake on SQLite and PostgreSQL: idempotency held by the database, versions, If-Match,
cancellation, history, searches and Prefer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from referral_service.adapters.db.tables import jobs, referral_versions, referrals, tasks
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral, service_request, variant

HEADERS = {"Content-Type": FHIR_JSON}


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_twenty_concurrent_posts_make_one_referral_and_one_task(app, engine) -> None:
    document = eligible_referral("concurrent-1")

    def post(_: int) -> int:
        return (
            app.test_client()
            .post("/fhir/ServiceRequest", json=document, headers=HEADERS)
            .status_code
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(post, range(20)))
    assert sorted(set(statuses)) == [200, 201]
    assert statuses.count(201) == 1
    assert _count(engine, referrals) == 1
    assert _count(engine, tasks) == 1
    assert _count(engine, jobs) == 1


def test_same_identifier_again_returns_the_existing_referral(client, engine) -> None:
    first = client.post("/fhir/ServiceRequest", json=service_request("again"), headers=HEADERS)
    second = client.post("/fhir/ServiceRequest", json=service_request("again"), headers=HEADERS)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["ETag"] == 'W/"1"'
    assert _count(engine, referrals) == 1


def test_if_none_exist_returns_the_existing_referral(client, engine) -> None:
    created = client.post("/fhir/ServiceRequest", json=service_request("cond"), headers=HEADERS)
    changed = variant(service_request("other"), priority="urgent")
    response = client.post(
        "/fhir/ServiceRequest",
        json=changed,
        headers={**HEADERS, "If-None-Exist": "identifier=https://er.example.org/referrals|cond"},
    )
    assert response.status_code == 200
    assert response.get_json()["id"] == created.get_json()["id"]
    assert response.get_json()["priority"] == "routine"
    assert _count(engine, referrals) == 1


def test_changed_resource_under_same_identifier_is_a_new_version(client, engine) -> None:
    first = client.post("/fhir/ServiceRequest", json=service_request("ver"), headers=HEADERS)
    changed = variant(service_request("ver"), priority="urgent")
    second = client.post("/fhir/ServiceRequest", json=changed, headers=HEADERS)
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.headers["ETag"] == 'W/"2"'
    assert _count(engine, referrals) == 1
    assert _count(engine, referral_versions) == 2
    referral_id = first.get_json()["id"]
    old = client.get(f"/fhir/ServiceRequest/{referral_id}/_history/1").get_json()
    assert old["priority"] == "routine" and old["meta"]["versionId"] == "1"


def test_put_with_stale_if_match_is_412_and_changes_nothing(client) -> None:
    created = client.post("/fhir/ServiceRequest", json=service_request("put"), headers=HEADERS)
    referral_id = created.get_json()["id"]
    body = variant(service_request("put"), id=referral_id, priority="asap")
    ok = client.put(
        f"/fhir/ServiceRequest/{referral_id}", json=body, headers={**HEADERS, "If-Match": 'W/"1"'}
    )
    assert ok.status_code == 200 and ok.headers["ETag"] == 'W/"2"'
    stale = client.put(
        f"/fhir/ServiceRequest/{referral_id}", json=body, headers={**HEADERS, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/ServiceRequest/{referral_id}").headers["ETag"] == 'W/"2"'


def test_put_with_mismatched_id_is_refused(client) -> None:
    created = client.post("/fhir/ServiceRequest", json=service_request("mis"), headers=HEADERS)
    referral_id = created.get_json()["id"]
    body = variant(service_request("mis"), id="someone-else")
    response = client.put(f"/fhir/ServiceRequest/{referral_id}", json=body, headers=HEADERS)
    assert response.status_code == 422


def test_revoking_cancels_the_referral_and_its_appointment(client, runtime) -> None:
    created = client.post("/fhir/ServiceRequest", json=eligible_referral("rev"), headers=HEADERS)
    referral_id = created.get_json()["id"]
    Worker(runtime).run_until_idle()
    task = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    appointment_ref = task["entry"][0]["resource"]["output"][0]["valueReference"]["reference"]

    body = variant(eligible_referral("rev"), id=referral_id, status="revoked")
    response = client.put(
        f"/fhir/ServiceRequest/{referral_id}", json=body, headers={**HEADERS, "If-Match": 'W/"1"'}
    )
    assert response.status_code == 200
    Worker(runtime).run_until_idle()
    task = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()["entry"][0][
        "resource"
    ]
    assert task["status"] == "cancelled"
    assert task["businessStatus"]["coding"][0]["code"] == "cancelled"
    assert client.get(f"/fhir/{appointment_ref}").get_json()["status"] == "cancelled"


def test_searches_filter_and_page(client) -> None:
    ids = []
    for n in range(3):
        response = client.post(
            "/fhir/ServiceRequest", json=service_request(f"s{n}"), headers=HEADERS
        )
        ids.append(response.get_json()["id"])
    by_identifier = client.get(
        "/fhir/ServiceRequest?identifier=https://er.example.org/referrals|s1"
    ).get_json()
    assert by_identifier["total"] == 1 and by_identifier["entry"][0]["resource"]["id"] == ids[1]
    by_status = client.get("/fhir/ServiceRequest?status=active&_count=2").get_json()
    assert by_status["total"] == 3 and len(by_status["entry"]) == 2
    assert any(link["relation"] == "next" for link in by_status["link"])
    none = client.get("/fhir/ServiceRequest?status=completed").get_json()
    assert none["total"] == 0
    later = client.get("/fhir/ServiceRequest?_lastUpdated=gt2030-01-01").get_json()
    assert later["total"] == 0
    by_patient = client.get("/fhir/ServiceRequest?patient=%23patient").get_json()
    assert by_patient["total"] == 3
    tasks_received = client.get("/fhir/Task?status=received").get_json()
    assert tasks_received["total"] == 3


def test_prefer_return_minimal_and_operation_outcome(client) -> None:
    minimal = client.post(
        "/fhir/ServiceRequest",
        json=service_request("pm"),
        headers={**HEADERS, "Prefer": "return=minimal"},
    )
    assert minimal.status_code == 201 and minimal.get_data() == b""
    assert minimal.headers["Location"]
    outcome = client.post(
        "/fhir/ServiceRequest",
        json=service_request("po"),
        headers={**HEADERS, "Prefer": "return=OperationOutcome"},
    )
    assert outcome.get_json()["resourceType"] == "OperationOutcome"


def test_every_new_referral_has_a_received_task_at_once(client) -> None:
    created = client.post("/fhir/ServiceRequest", json=service_request("t"), headers=HEADERS)
    referral_id = created.get_json()["id"]
    bundle = client.get(f"/fhir/Task?based-on=ServiceRequest/{referral_id}").get_json()
    task = bundle["entry"][0]["resource"]
    assert task["status"] == "received"
    assert task["focus"]["reference"] == f"ServiceRequest/{referral_id}"
    read = client.get(f"/fhir/Task/{task['id']}")
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'


def test_request_ids_are_echoed_only_when_they_look_like_ids(client) -> None:
    kept = client.get("/fhir/metadata", headers={"X-Request-ID": "abc-123.x_y"})
    assert kept.headers["X-Request-ID"] == "abc-123.x_y"
    replaced = client.get("/fhir/metadata", headers={"X-Request-ID": "Jane Doe 1970-01-01"})
    assert replaced.headers["X-Request-ID"] != "Jane Doe 1970-01-01"
    assert len(replaced.headers["X-Request-ID"]) == 32


def test_the_capability_statement_names_the_running_policy(client, runtime) -> None:
    statement = client.get("/fhir/metadata").get_json()
    assert statement["implementation"]["description"].endswith(
        f"eligibility policy {runtime.policy.version}"
    )
    assert runtime.policy.version == "2026.12-default.1"
