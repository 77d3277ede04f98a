"""FhirClient over HTTP (mocked with `responses`): retries, typed errors, paging, ETags."""

from __future__ import annotations

import pytest
import requests
import responses

from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import (
    EhrAuthError,
    EhrConflict,
    EhrDataError,
    EhrNotFound,
    EhrRequestError,
    EhrUnavailable,
)
from referral_service.adapters.ehr.headers import etag

BASE = "https://ehr.test/fhir"
PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"}}


def outcome(text: str, code: str = "invalid") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> FhirClient:
    return FhirClient(BASE, max_retries=3, sleep=sleeps.append)


@responses.activate
def test_get_retries_503_with_backoff_then_succeeds(
    client: FhirClient, sleeps: list[float]
) -> None:
    url = f"{BASE}/Patient/p1"
    responses.get(url, status=503)
    responses.get(url, status=503)
    responses.get(url, json=PATIENT)
    assert client.read("Patient", "p1")["id"] == "p1"
    assert len(responses.calls) == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


@responses.activate
def test_429_honours_retry_after(client: FhirClient, sleeps: list[float]) -> None:
    url = f"{BASE}/Patient/p1"
    responses.get(url, status=429, headers={"Retry-After": "7"})
    responses.get(url, json=PATIENT)
    client.read("Patient", "p1")
    assert sleeps == [7.0]


@responses.activate
def test_retry_after_beyond_the_limit_is_returned_not_slept(
    client: FhirClient, sleeps: list[float]
) -> None:
    responses.get(f"{BASE}/Patient/p1", status=503, headers={"Retry-After": "3600"})
    with pytest.raises(EhrUnavailable) as caught:
        client.read("Patient", "p1")
    assert caught.value.retry_after == 3600 and caught.value.retryable
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_gives_up_after_max_retries(client: FhirClient, sleeps: list[float]) -> None:
    responses.get(f"{BASE}/Patient/p1", status=502, json=outcome("upstream down", "transient"))
    with pytest.raises(EhrUnavailable, match="upstream down"):
        client.read("Patient", "p1")
    assert len(responses.calls) == 4 and len(sleeps) == 3


@responses.activate
def test_connection_errors_are_retried_for_get(client: FhirClient) -> None:
    url = f"{BASE}/Patient/p1"
    responses.get(url, body=requests.ConnectionError("refused"))
    responses.get(url, json=PATIENT)
    assert client.read("Patient", "p1")["id"] == "p1"


@responses.activate
def test_plain_post_is_never_repeated(client: FhirClient, sleeps: list[float]) -> None:
    responses.post(f"{BASE}/Patient", status=503)
    with pytest.raises(EhrUnavailable):
        client.create({"resourceType": "Patient"})
    assert len(responses.calls) == 1 and sleeps == []
    responses.post(f"{BASE}/Patient", body=requests.ConnectionError("reset"))
    with pytest.raises(EhrUnavailable):
        client.create({"resourceType": "Patient"})
    assert len(responses.calls) == 2


@responses.activate
def test_conditional_post_and_if_match_put_are_repeated(client: FhirClient) -> None:
    responses.post(f"{BASE}/Patient", status=503)
    responses.post(f"{BASE}/Patient", status=201, json=PATIENT)
    created = client.create({"resourceType": "Patient"}, if_none_exist="identifier=a|b")
    assert created["id"] == "p1"
    assert responses.calls[1].request.headers["If-None-Exist"] == "identifier=a|b"
    responses.put(f"{BASE}/Patient/p1", status=500)
    responses.put(f"{BASE}/Patient/p1", json=PATIENT)
    client.update(PATIENT, if_match=etag(PATIENT))
    assert responses.calls[-1].request.headers["If-Match"] == 'W/"3"'


@responses.activate
def test_put_without_if_match_is_not_repeated(client: FhirClient) -> None:
    responses.put(f"{BASE}/Patient/p1", status=503)
    with pytest.raises(EhrUnavailable):
        client.update(PATIENT)
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, EhrNotFound),
        (410, EhrNotFound),
        (409, EhrConflict),
        (412, EhrConflict),
        (401, EhrAuthError),
        (403, EhrAuthError),
        (400, EhrRequestError),
        (422, EhrRequestError),
    ],
)
@responses.activate
def test_statuses_map_to_typed_errors_with_outcome_text(
    client: FhirClient, status: int, kind: type
) -> None:
    responses.put(f"{BASE}/Patient/p1", status=status, json=outcome("Patient.gender is wrong"))
    with pytest.raises(kind, match="Patient.gender is wrong") as caught:
        client.update(PATIENT, if_match=etag(PATIENT))
    assert caught.value.status == status and not caught.value.retryable
    assert len(responses.calls) == 1


@responses.activate
def test_search_follows_next_links_and_skips_includes(client: FhirClient) -> None:
    page2 = f"{BASE}/Slot?_offset=2"
    responses.get(
        f"{BASE}/Slot",
        match=[responses.matchers.query_param_matcher({"status": "free"})],
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [
                {"relation": "self", "url": f"{BASE}/Slot"},
                {"relation": "next", "url": page2},
            ],
            "entry": [
                {"resource": {"resourceType": "Slot", "id": "1"}, "search": {"mode": "match"}},
                {
                    "resource": {"resourceType": "Schedule", "id": "s"},
                    "search": {"mode": "include"},
                },
            ],
        },
    )
    responses.get(
        page2,
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": {"resourceType": "Slot", "id": "2"}}],
        },
    )
    assert [r["id"] for r in client.search("Slot", {"status": "free"})] == ["1", "2"]


@responses.activate
def test_next_link_to_another_host_is_refused(client: FhirClient) -> None:
    responses.get(
        f"{BASE}/Slot",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": "https://evil.test/fhir/Slot?page=2"}],
        },
    )
    with pytest.raises(EhrDataError, match="outside"):
        list(client.search("Slot"))


@responses.activate
def test_etag_header_fills_missing_version_and_latency_is_reported() -> None:
    seen: list[tuple[str, int, float]] = []
    client = FhirClient(BASE, on_request=lambda i, s, t: seen.append((i, s, t)))
    responses.get(
        f"{BASE}/Patient/p1",
        json={"resourceType": "Patient", "id": "p1"},
        headers={"ETag": 'W/"9"'},
    )
    responses.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    assert etag(client.read("Patient", "p1")) == 'W/"9"'
    client.capabilities()
    assert [(i, s) for i, s, _ in seen] == [("read", 200), ("capabilities", 200)]
    assert all(t >= 0 for _, _, t in seen)


@responses.activate
def test_non_json_answer_is_a_data_error(client: FhirClient) -> None:
    responses.get(f"{BASE}/Patient/p1", body="<html>hello</html>")
    with pytest.raises(EhrDataError):
        client.read("Patient", "p1")


def test_the_environment_is_read_once_for_proxies_and_ca_bundle(monkeypatch) -> None:
    from referral_service.adapters.ehr.client import environment_session

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.clinic.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/clinic/ca.pem")
    session = environment_session("https://ehr.clinic.example/fhir")
    assert session.proxies["https"] == "http://proxy.clinic.example:3128"
    assert session.verify == "/etc/clinic/ca.pem"
    assert session.trust_env is False  # no per-request re-reading of os.environ and ~/.netrc

    bypassed = environment_session("http://localhost:8080/fhir")
    assert "https" not in bypassed.proxies and "http" not in bypassed.proxies
