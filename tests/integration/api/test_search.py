"""FHIR search that tells the truth (issue 21): date precision and prefixes at the boundaries,
AND/OR, strict and lenient handling, POST _search, paging links, public URLs, history; on
SQLite and PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import fhirkit
import pytest

from referral_service.api.app import create_app
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral, service_request

HEADERS = {"Content-Type": FHIR_JSON}
STRICT = {"Prefer": "handling=strict"}

# Four referrals last updated around the day 2026-12-02 (UTC).
MOMENTS = {
    "before": datetime(2026, 12, 1, 23, 59, 59, 999000, tzinfo=UTC),
    "first": datetime(2026, 12, 2, 0, 0, 0, tzinfo=UTC),
    "last": datetime(2026, 12, 2, 23, 59, 59, 999000, tzinfo=UTC),
    "after": datetime(2026, 12, 3, 0, 0, 0, tzinfo=UTC),
}
ALL = set(MOMENTS)


@pytest.fixture
def around_a_day(client, clock) -> dict[str, str]:
    """name -> referral id, each written at its moment, each for its own patient."""
    made = {}
    for name, moment in MOMENTS.items():
        clock.moment = moment
        document = service_request(
            f"day-{name}",
            subject={"reference": f"Patient/p-{name}"},
            requester={"reference": f"Practitioner/dr-{name}"},
            authoredOn=moment.isoformat().replace("+00:00", "Z"),
        )
        response = client.post("/fhir/ServiceRequest", json=document, headers=HEADERS)
        assert response.status_code == 201, response.get_json()
        made[name] = response.get_json()["id"]
    return made


def found(client, query: str, headers: dict | None = None) -> dict:
    response = client.get(f"/fhir/{query}", headers=headers or {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(client, made: dict[str, str], query: str) -> set[str]:
    by_id = {referral_id: name for name, referral_id in made.items()}
    bundle = found(client, f"ServiceRequest?{query}")
    return {by_id[e["resource"]["id"]] for e in bundle.get("entry", [])}


DATE_TABLE = [
    # precision: year
    ("2026", ALL),
    ("eq2026", ALL),
    ("ne2026", set()),
    ("lt2027", ALL),
    ("ge2027", set()),
    # month
    ("2026-12", ALL),
    ("2026-11", set()),
    ("sa2026-11", ALL),
    ("eb2027-01", ALL),
    ("gt2026-12", set()),
    # day
    ("2026-12-02", {"first", "last"}),
    ("eq2026-12-02", {"first", "last"}),
    ("ne2026-12-02", {"before", "after"}),
    ("lt2026-12-02", {"before"}),
    ("eb2026-12-02", {"before"}),
    ("le2026-12-02", {"before", "first", "last"}),
    ("gt2026-12-02", {"after"}),
    ("sa2026-12-02", {"after"}),
    ("ge2026-12-02", {"first", "last", "after"}),
    # seconds
    ("2026-12-02T00:00:00Z", {"first"}),
    ("gt2026-12-02T00:00:00Z", {"last", "after"}),
    ("lt2026-12-02T00:00:00Z", {"before"}),
    ("le2026-12-02T00:00:00Z", {"before", "first"}),
    ("ge2026-12-02T00:00:00Z", {"first", "last", "after"}),
    ("2026-12-02T23:59:59Z", {"last"}),
    ("2026-12-03T01:00:00%2B01:00", {"after"}),
    ("2026-12-03T01:00:00+01:00", {"after"}),  # an unencoded + arrives as a space
    ("2026-12-01T18:59:59-05:00", {"before"}),
]


@pytest.mark.parametrize(("value", "expected"), DATE_TABLE)
def test_last_updated_by_precision_and_prefix(client, around_a_day, value, expected) -> None:
    assert names(client, around_a_day, f"_lastUpdated={value}") == expected


@pytest.mark.parametrize(("value", "expected"), DATE_TABLE[10:19])
def test_authored_by_prefix(client, around_a_day, value, expected) -> None:
    assert names(client, around_a_day, f"authored={value}") == expected


def test_ap_matches_near_the_day(client, around_a_day, clock) -> None:
    clock.moment = datetime(2026, 12, 12, tzinfo=UTC)  # ten days on: a day's slack each side
    assert names(client, around_a_day, "_lastUpdated=ap2026-12-02") == ALL
    assert names(client, around_a_day, "_lastUpdated=ap2026-11-25") == set()


def test_repeated_parameters_and_comma_lists_or(client, around_a_day) -> None:
    made = around_a_day
    assert names(client, made, "_lastUpdated=ge2026-12-02&_lastUpdated=lt2026-12-03") == {
        "first",
        "last",
    }
    assert names(client, made, "authored=2026-12-01,2026-12-03") == {"before", "after"}
    assert found(client, "Task?status=accepted&status=received")["total"] == 0
    assert found(client, "Task?status=accepted,received")["total"] == 4
    assert found(client, "Task?status:not=received")["total"] == 0


def test_reference_parameters_and_their_modifiers(client, around_a_day) -> None:
    made = around_a_day
    assert names(client, made, "subject=Patient/p-first") == {"first"}
    assert names(client, made, "subject:Patient=p-first") == {"first"}
    assert names(client, made, "patient=p-last,p-after") == {"last", "after"}
    assert names(client, made, "subject:Patient=Patient/nonexistent") == set()
    assert names(client, made, "requester=Practitioner/dr-before") == {"before"}
    assert names(client, made, "requester:Practitioner=dr-after") == {"after"}
    assert names(client, made, "requester:Organization=dr-after") == set()
    assert names(client, made, f"_id={made['first']},{made['last']}") == {"first", "last"}
    tasks = found(client, "Task?subject:Patient=p-before")
    assert [e["resource"]["focus"]["reference"] for e in tasks["entry"]] == [
        f"ServiceRequest/{made['before']}"
    ]
    assert found(client, "Task?patient=Patient/p-after")["total"] == 1


def test_lenient_ignores_and_says_so_in_the_self_link(client, around_a_day) -> None:
    bundle = found(client, "ServiceRequest?status=active&_sort=-authored&category:text=x")
    assert bundle["total"] == 4
    self_query = dict(parse_qsl(urlsplit(bundle["link"][0]["url"]).query))
    assert self_query == {"status": "active", "_count": "20", "_offset": "0"}


@pytest.mark.parametrize(
    "query",
    [
        "ServiceRequest?_sort=-authored",
        "ServiceRequest?status:exact=active",
        "ServiceRequest?subject:Group=g",
        "Task?owner=Organization/x",
        "Appointment?actor=Patient/x",
        "Condition?code=G43",
    ],
)
def test_strict_refuses_and_names_what_it_refuses(client, query) -> None:
    response = client.get(f"/fhir/{query}", headers=STRICT)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    refused = query.split("?")[1].split("=")[0]
    assert outcome["issue"][0]["code"] == "not-supported"
    assert outcome["issue"][0]["expression"] == [refused]


def test_strict_accepts_what_is_supported(client, around_a_day) -> None:
    query = "ServiceRequest?status=active&_lastUpdated=2026-12-02&_count=1"
    assert found(client, query, STRICT)["total"] == 2


def test_post_search_answers_as_get(client, around_a_day) -> None:
    form = {"_lastUpdated": "2026-12-02", "status": "active"}
    posted = client.post("/fhir/ServiceRequest/_search", data=form)
    assert posted.status_code == 200
    got = found(client, "ServiceRequest?_lastUpdated=2026-12-02&status=active")
    assert posted.get_json() == got
    strict = client.post("/fhir/Task/_search", data={"owner": "x"}, headers=STRICT)
    assert strict.status_code == 400
    not_a_form = client.post("/fhir/Task/_search", json={"status": "ready"})
    assert not_a_form.status_code == 415
    assert client.post("/fhir/Condition/_search", data={"_id": "x"}).get_json()["total"] == 0


def test_paging_links_lead_to_the_end(client, around_a_day) -> None:
    seen: list[str] = []
    url: str | None = "/fhir/ServiceRequest?_count=3"
    pages = 0
    while url:
        bundle = client.get(url).get_json()
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert {"self", "first", "last"} <= set(links)
        assert ("previous" in links) == (pages > 0)
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        url = links.get("next")
        if url:
            url = url.removeprefix("http://localhost")
        pages += 1
    assert pages == 2 and sorted(seen) == sorted(around_a_day.values())
    counted = found(client, "ServiceRequest?_count=0")
    assert counted["total"] == 4 and "entry" not in counted
    assert {link["relation"] for link in counted["link"]} == {"self", "first"}


def test_searchsets_of_every_type_are_valid_r4_when_empty_and_full(client, runtime) -> None:
    created = client.post("/fhir/ServiceRequest", json=eligible_referral("shape"), headers=HEADERS)
    referral_id = created.get_json()["id"]
    Worker(runtime).run_until_idle()
    client.post("/fhir/Patient", json={"resourceType": "Patient", "id": "x"}, headers=HEADERS)
    statement = client.get("/fhir/metadata").get_json()
    types = [
        entry["type"]
        for entry in statement["rest"][0]["resource"]
        if {"code": "search-type"} in entry["interaction"]
    ]
    # ServiceRequest, Task, Appointment, AuditEvent, the 13 pushed types (one list since
    # issue 15: MedicationAdministration joined the REST push as Bundles had it), and a
    # referrer's own Subscriptions (issue 16)
    assert len(types) == 18
    for resource_type in types:
        nothing = "date=1990" if resource_type == "AuditEvent" else "_id=none-such"
        empty = found(client, f"{resource_type}?{nothing}")
        assert empty["total"] == 0 and "entry" not in empty
        assert fhirkit.validate(empty) == [], resource_type
        full = found(client, resource_type)
        assert fhirkit.validate(full) == [], (resource_type, fhirkit.validate(full))
        if resource_type in ("ServiceRequest", "Task", "Appointment", "Patient"):
            assert full["total"] >= 1, resource_type
    history = found(client, f"ServiceRequest/{referral_id}/_history")
    assert fhirkit.validate(history) == []
    for refused in (
        client.get("/fhir/Task?owner=x", headers=STRICT),
        client.get("/fhir/_history"),
    ):
        assert fhirkit.validate(refused.get_json()) == []


def test_appointment_by_patient_date_and_referral(client, runtime) -> None:
    document = eligible_referral("appt")
    patient = {k: v for k, v in document["contained"][0].items() if k != "id"}
    pushed = client.post("/fhir/Patient", json=patient, headers=HEADERS).get_json()["id"]
    document["subject"] = {"reference": f"Patient/{pushed}"}
    response = client.post("/fhir/ServiceRequest", json=document, headers=HEADERS)
    referral_id = response.get_json()["id"]
    Worker(runtime).run_until_idle()
    task = found(client, f"Task?focus={referral_id}")["entry"][0]["resource"]
    assert task["businessStatus"]["text"] == "booked", task
    booked = found(client, f"Appointment?based-on=ServiceRequest/{referral_id}")["entry"][0]
    start = booked["resource"]["start"]  # an instant to the second, as we write it
    day, second = start[:10], start
    assert found(client, f"Appointment?patient=Patient/{pushed}")["total"] == 1
    assert found(client, f"Appointment?patient:Patient={pushed}")["total"] == 1
    assert found(client, "Appointment?patient=Patient/someone-else")["total"] == 0
    assert found(client, f"Appointment?date={day}")["total"] == 1
    assert found(client, f"Appointment?date={second}")["total"] == 1
    assert found(client, f"Appointment?date=gt{second}")["total"] == 0
    assert found(client, f"Appointment?date=sa{day}")["total"] == 0
    assert found(client, f"Appointment?date=eb{day}")["total"] == 0
    assert found(client, f"Appointment?date=ge{day}&status=booked")["total"] == 1


def test_absolute_urls_come_from_the_public_url(runtime, clock) -> None:
    runtime.settings = dataclasses.replace(
        runtime.settings, public_url="https://referrals.clinic.example/"
    )
    app = create_app(runtime=runtime)
    client = app.test_client()
    created = client.post(
        "/fhir/ServiceRequest",
        json=service_request("public"),
        headers={**HEADERS, "Host": "internal:9999"},
    )
    assert created.headers["Location"].startswith("https://referrals.clinic.example/fhir/")
    bundle = client.get("/fhir/ServiceRequest", headers={"Host": "internal:9999"}).get_json()
    urls = [link["url"] for link in bundle["link"]] + [e["fullUrl"] for e in bundle["entry"]]
    assert all(url.startswith("https://referrals.clinic.example/fhir/") for url in urls), urls


def test_referral_history_and_refused_history(client) -> None:
    made = client.post("/fhir/ServiceRequest", json=service_request("hist"), headers=HEADERS)
    referral_id = made.get_json()["id"]
    revoked = {**service_request("hist"), "id": referral_id, "status": "revoked"}
    client.put(f"/fhir/ServiceRequest/{referral_id}", json=revoked, headers=HEADERS)
    history = found(client, f"ServiceRequest/{referral_id}/_history")
    assert history["type"] == "history" and history["total"] == 2
    assert [e["resource"]["status"] for e in history["entry"]] == ["revoked", "active"]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]
    assert client.get("/fhir/ServiceRequest/nope/_history").status_code == 404
    task_id = found(client, f"Task?focus=ServiceRequest/{referral_id}")["entry"][0]["resource"][
        "id"
    ]
    for path in (
        "/fhir/_history",
        "/fhir/ServiceRequest/_history",
        f"/fhir/Task/{task_id}/_history",
        "/fhir/Patient/x/_history",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith(FHIR_JSON)
        assert response.get_json()["issue"][0]["code"] == "not-supported", path


def test_absurd_paging_in_a_search_body_is_400(client) -> None:
    for form in ({"_offset": "9" * 30}, {"_count": "9" * 5000}, {"_offset": "1000001"}):
        response = client.post("/fhir/ServiceRequest/_search", data=form)
        assert response.status_code == 400, form
        assert response.get_json()["issue"][0]["code"] == "value"


def test_bad_values_are_400_never_500(client) -> None:
    for query in (
        "ServiceRequest?_lastUpdated=ge-soon",
        "ServiceRequest?authored=2026-13-01",
        "Appointment?date=2026-12-02T25:00Z",
        "Task?_count=-1",
        "AuditEvent?date=yesterday",
    ):
        response = client.get(f"/fhir/{query}")
        assert response.status_code == 400, query
        assert response.get_json()["resourceType"] == "OperationOutcome"


SAMPLE = {"token": "x", "reference": "Patient/x", "date": "2026-12", "number": "1"}


def test_the_capability_statement_lists_exactly_what_strict_search_accepts(client) -> None:
    statement = client.get("/fhir/metadata").get_json()
    assert fhirkit.validate(statement) == []
    for entry in statement["rest"][0]["resource"]:
        if {"code": "search-type"} not in entry["interaction"]:
            continue
        kind = entry["type"]
        for parameter in entry.get("searchParam", []):  # a Subscription list takes none
            name, notes = parameter["name"], parameter.get("documentation", "")
            query = {name: SAMPLE[parameter["type"]]}
            assert client.get(f"/fhir/{kind}", query_string=query, headers=STRICT).status_code == (
                200
            ), (kind, name)
            modifiers = (
                notes.split("modifiers: ")[1].split(";")[0] if "modifiers: " in notes else ""
            )
            for modifier in filter(None, modifiers.split(", ")):
                key = f"{name}{modifier}"
                answer = client.get(f"/fhir/{kind}", query_string={key: "x"}, headers=STRICT)
                assert answer.status_code == 200, (kind, key)
            unlisted = client.get(
                f"/fhir/{kind}", query_string={f"{name}:exact": "x"}, headers=STRICT
            )
            assert unlisted.status_code == 400, (kind, name)
        posted = client.post(f"/fhir/{kind}/_search", data={}, headers=STRICT)
        assert posted.status_code == 200, kind
