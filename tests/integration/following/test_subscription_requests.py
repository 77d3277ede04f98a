"""What a Subscription may ask for: refused ones get a 4xx OperationOutcome naming the element
and store nothing; a sender reads, lists and deletes only its own; `$status`; the
CapabilityStatement lists the topic."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from referral_service.config import Settings
from referral_service.fhir.subscriptions import endpoint_allowed
from referral_service.worker import Worker
from tests.integration.following.conftest import BACKPORT, TOPIC, Receiver, refer, subscription


def _changed(path: list[Any], value: Any) -> dict[str, Any]:
    resource = subscription("https://receiver.example.org/hook")
    target = resource
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return resource


REFUSED = [
    ("not a Subscription", ["resourceType"], "Patient", 400, "invalid"),
    ("another topic", ["criteria"], "Observation?code=1234-5", 422, "not-supported"),
    ("no status", ["status"], KeyError, 422, "value"),
    ("status off", ["status"], "off", 422, "value"),
    ("websocket", ["channel", "type"], "websocket", 422, "not-supported"),
    ("no endpoint", ["channel", "endpoint"], KeyError, 422, "value"),
    ("relative endpoint", ["channel", "endpoint"], "/hook", 422, "value"),
    ("ftp endpoint", ["channel", "endpoint"], "ftp://receiver.example.org/", 422, "value"),
    ("plain http", ["channel", "endpoint"], "http://receiver.example.org/hook", 422, "security"),
    ("plain http, a query", ["channel", "endpoint"], "http://r.example.org/?a=1", 422, "security"),
    (
        "long endpoint",
        ["channel", "endpoint"],
        "https://r.example.org/" + "a" * 2048,
        422,
        "too-long",
    ),
    ("credentials", ["channel", "endpoint"], "https://u:p@receiver.example.org/", 422, "value"),
    ("xml payload", ["channel", "payload"], "application/fhir+xml", 422, "not-supported"),
    (
        "unknown content",
        ["channel", "_payload", "extension", 0, "valueCode"],
        "everything",
        422,
        "value",
    ),
    ("header without colon", ["channel", "header"], ["Authorization"], 422, "value"),
    ("header with newline", ["channel", "header"], ["X-A: 1\r\nX-B: 2"], 422, "value"),
    ("no channel", ["channel"], KeyError, 422, "required"),
]


@pytest.mark.parametrize(
    ("path", "value", "status", "code"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_refused_subscription_says_why_and_stores_nothing(
    as_sender, path: list[Any], value: Any, status: int, code: str
) -> None:
    a = as_sender("er-a")
    response = a("POST", "/fhir/Subscription", _changed(path, value))
    assert response.status_code == status, response.get_json()
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert a("GET", "/fhir/Subscription").get_json()["total"] == 0


@pytest.mark.parametrize(
    ("extension", "value"),
    [
        ("backport-heartbeat-period", -1),
        ("backport-heartbeat-period", "60"),
        ("backport-timeout", 0),
        ("backport-timeout", 3600),
    ],
)
def test_heartbeat_and_timeout_are_bounded(as_sender, extension: str, value: Any) -> None:
    resource = subscription("https://receiver.example.org/hook")
    resource["channel"]["extension"] = [{"url": BACKPORT + extension, "valueUnsignedInt": value}]
    response = as_sender("er-a")("POST", "/fhir/Subscription", resource)
    assert response.status_code == 422
    assert response.get_json()["issue"][0]["expression"] == [BACKPORT + extension]


@pytest.mark.parametrize(
    "filter_value",
    [
        "Task?status=ready",
        "ServiceRequest?_id=1",
        "Task?focus=ServiceRequest/x&status=ready",
        "Task?focus=ServiceRequest/does-not-exist",
    ],
)
def test_only_a_filter_on_ones_own_referral(as_sender, filter_value: str) -> None:
    resource = subscription("https://receiver.example.org/hook")
    resource["_criteria"] = {
        "extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": filter_value}]
    }
    response = as_sender("er-a")("POST", "/fhir/Subscription", resource)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["issue"][0]["expression"] == ["Subscription.criteria"]


def test_https_anywhere_plain_http_on_loopback_or_the_allow_list() -> None:
    assert endpoint_allowed("https://receiver.example.org/hook", ())
    for loopback in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]:8/h",
        "http://127.0.0.2/hook",
    ):
        assert endpoint_allowed(loopback, ()), loopback
    assert not endpoint_allowed("http://receiver.lan/hook", ())
    assert not endpoint_allowed("http://10.0.0.1/hook", ())
    allowed = ("http://receiver.lan:8080/fhir",)
    assert endpoint_allowed("http://receiver.lan:8080/fhir/hook", allowed)
    assert endpoint_allowed("http://RECEIVER.lan:8080/fhir", allowed)
    assert not endpoint_allowed("http://receiver.lan:8080/fhirish", allowed)
    assert not endpoint_allowed("http://receiver.lan/fhir/hook", allowed)


def test_the_allow_list_setting_admits_plain_http(runtime, as_sender) -> None:
    env = {"REFERRAL_SUBSCRIPTION_ALLOWED_ENDPOINTS": "http://receiver.lan:8080/hooks/"}
    allowed = Settings.from_env(env).subscription_allowed_endpoints
    assert allowed == ("http://receiver.lan:8080/hooks",)
    runtime.settings = dataclasses.replace(runtime.settings, subscription_allowed_endpoints=allowed)
    a = as_sender("er-a")
    inside = a("POST", "/fhir/Subscription", subscription("http://receiver.lan:8080/hooks/a"))
    assert inside.status_code == 201, inside.get_json()
    outside = a("POST", "/fhir/Subscription", subscription("http://receiver.lan:8080/x"))
    assert outside.status_code == 422
    # the setting changes later: the Subscription accepted under it still reads
    runtime.settings = dataclasses.replace(runtime.settings, subscription_allowed_endpoints=())
    assert a("GET", f"/fhir/Subscription/{inside.get_json()['id']}").status_code == 200


def test_a_sender_reads_lists_and_deletes_only_its_own(
    as_sender, receiver: Receiver, runtime
) -> None:
    a, b = as_sender("er-a"), as_sender("er-b")
    mine = a("POST", "/fhir/Subscription", subscription(receiver.url)).get_json()["id"]
    theirs = b("POST", "/fhir/Subscription", subscription(receiver.url)).get_json()["id"]
    assert a("GET", f"/fhir/Subscription/{mine}").status_code == 200
    for call, other in ((a, theirs), (b, mine)):
        assert call("GET", f"/fhir/Subscription/{other}").status_code == 404
        assert call("GET", f"/fhir/Subscription/{other}/$status").status_code == 404
        assert call("DELETE", f"/fhir/Subscription/{other}").status_code == 404
        put = call("PUT", f"/fhir/Subscription/{other}", subscription(receiver.url))
        assert put.status_code == 404
    listed = a("GET", "/fhir/Subscription").get_json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [mine]
    assert b("GET", f"/fhir/Subscription/{theirs}").status_code == 200  # untouched

    Worker(runtime).run_until_idle()
    assert a("DELETE", f"/fhir/Subscription/{mine}").status_code == 204
    assert a("GET", f"/fhir/Subscription/{mine}").status_code == 404
    before = len(receiver.received)
    refer(a, "sub-i-1")
    Worker(runtime).run_until_idle()
    assert receiver.received[before:] == []  # deleted: told nothing; b follows only its own


def test_status_operation(as_sender, receiver: Receiver, runtime) -> None:
    a = as_sender("er-a")
    subscription_id = a("POST", "/fhir/Subscription", subscription(receiver.url)).get_json()["id"]
    bundle = a("GET", f"/fhir/Subscription/{subscription_id}/$status").get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    (entry,) = bundle["entry"]
    parameters = {p["name"]: p for p in entry["resource"]["parameter"]}
    assert entry["resource"]["meta"]["profile"] == [BACKPORT + "backport-subscription-status-r4"]
    assert parameters["status"]["valueCode"] == "requested"
    assert parameters["type"]["valueCode"] == "query-status"
    assert parameters["topic"]["valueCanonical"] == TOPIC
    assert parameters["subscription"]["valueReference"]["reference"].endswith(
        f"/fhir/Subscription/{subscription_id}"
    )
    Worker(runtime).run_until_idle()
    refer(a, "sub-s-1")
    Worker(runtime).run_until_idle()
    bundle = a("GET", f"/fhir/Subscription/{subscription_id}/$status").get_json()
    parameters = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
    assert parameters["status"]["valueCode"] == "active"
    sent = len(receiver.of_type("event-notification"))
    assert sent >= 2
    assert parameters["events-since-subscription-start"]["valueString"] == str(sent)


def test_the_capability_statement_lists_the_topic(client) -> None:
    statement = client.get("/fhir/metadata").get_json()
    assert (
        "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/"
        "backport-subscription-server-r4" in statement["instantiates"]
    )
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    assert entry["extension"] == [
        {
            "url": BACKPORT + "capabilitystatement-subscriptiontopic-canonical",
            "valueCanonical": TOPIC,
        }
    ]
    assert {"create", "read", "update", "delete"} <= {i["code"] for i in entry["interaction"]}
    assert [op["name"] for op in entry["operation"]] == ["status"]


def test_an_unchanged_subscription_is_not_mutated_by_reading_it(as_sender) -> None:
    a = as_sender("er-a")
    sent = subscription("https://receiver.example.org/hook", heartbeat=120)
    body = a("POST", "/fhir/Subscription", copy.deepcopy(sent)).get_json()
    read = a("GET", f"/fhir/Subscription/{body['id']}").get_json()
    assert read == body
    assert read["channel"]["endpoint"] == sent["channel"]["endpoint"]
    assert {"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": 120} in read[
        "channel"
    ]["extension"]


def test_staff_see_every_subscription_but_never_its_headers(app, as_sender) -> None:
    from flask import g, request

    @app.before_request
    def _as_staff() -> None:
        if request.headers.get("X-Test-Staff"):
            g.is_staff = True

    a = as_sender("er-a")
    created = a("POST", "/fhir/Subscription", subscription("https://r.example.org/hook"))
    assert created.get_json()["channel"]["header"] == ["Authorization: Bearer receiver-secret"]
    staff = app.test_client()
    staff.environ_base["HTTP_X_TEST_STAFF"] = "1"
    read = staff.get(f"/fhir/Subscription/{created.get_json()['id']}").get_json()
    assert read["channel"]["endpoint"] == "https://r.example.org/hook"
    assert "header" not in read["channel"]
    listed = staff.get("/fhir/Subscription").get_json()
    assert listed["total"] == 1 and "header" not in listed["entry"][0]["resource"]["channel"]
