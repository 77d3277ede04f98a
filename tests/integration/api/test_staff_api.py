"""The staff API: review of a needs-review referral, retry of a failed booking, the detail
view and the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, ICD10, eligible_referral

HEADERS = {"Content-Type": FHIR_JSON}


def _needs_review_referral(identifier: str) -> dict:
    referral = eligible_referral(identifier)
    referral["reasonCode"] = [{"coding": [{"system": ICD10, "code": "G44.221"}]}]
    return referral


def _task(client, referral_id: str) -> dict:
    return client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()["entry"][0][
        "resource"
    ]


def test_approving_a_needs_review_referral_books_it(client, runtime) -> None:
    referral_id = client.post(
        "/fhir/ServiceRequest", json=_needs_review_referral("rv-1"), headers=HEADERS
    ).get_json()["id"]
    Worker(runtime).run_until_idle()
    assert _task(client, referral_id)["businessStatus"]["coding"][0]["code"] == "needs-review"
    queue = client.get("/api/referrals?status=needs-review").get_json()["items"]
    assert [item["id"] for item in queue] == [referral_id]

    response = client.post(
        f"/api/referrals/{referral_id}/review",
        json={"action": "approve", "note": "seen the imaging"},
    )
    assert response.status_code == 200, response.get_json()
    Worker(runtime).run_until_idle()
    detail = client.get(f"/api/referrals/{referral_id}").get_json()
    assert detail["task"]["businessStatus"]["coding"][0]["code"] == "booked"
    assert detail["decision"]["reasons"][-1]["rule"] == "staff-review"
    labels = {r["rule"]: r["label"] for r in detail["decision"]["reasons"]}
    assert labels["staff-review"] == "A clinician's review"
    assert labels["category.chronic-tension-type"] == "Headache type: Chronic tension-type headache"
    assert all(label and label != rule for rule, label in labels.items())
    diagnoses = [d["value"] for d in detail["story"]["diagnoses"]]
    assert "G44.221 Chronic tension-type headache, intractable" in diagnoses, diagnoses
    assert any(event["kind"] == "reviewed" for event in detail["events"])
    again = client.post(f"/api/referrals/{referral_id}/review", json={"action": "decline"})
    assert again.status_code == 409


def test_declining_rejects_with_the_reason(client, runtime) -> None:
    referral_id = client.post(
        "/fhir/ServiceRequest", json=_needs_review_referral("rv-2"), headers=HEADERS
    ).get_json()["id"]
    Worker(runtime).run_until_idle()
    response = client.post(
        f"/api/referrals/{referral_id}/review",
        json={"action": "decline", "note": "refer to cluster clinic"},
    )
    assert response.status_code == 200
    task = _task(client, referral_id)
    assert task["status"] == "rejected"
    assert any("declined" in note["text"] for note in task["note"])


def test_review_body_is_validated(client, runtime) -> None:
    referral_id = client.post(
        "/fhir/ServiceRequest", json=_needs_review_referral("rv-3"), headers=HEADERS
    ).get_json()["id"]
    response = client.post(f"/api/referrals/{referral_id}/review", json={"action": "maybe"})
    assert response.status_code == 422
    assert (
        client.post("/api/referrals/unknown/review", json={"action": "approve"}).status_code == 404
    )


def test_retry_requeues_a_booking_that_found_no_slot(client, runtime, clock) -> None:
    full = 0
    # Stat referrals have a one-day window: fill it until one finds no chair.
    while True:
        referral = eligible_referral(f"fill-{full}")
        referral["priority"] = "stat"  # one-day window: few chairs to fill
        client.post("/fhir/ServiceRequest", json=referral, headers=HEADERS)
        Worker(runtime).run_until_idle()
        full += 1
        last = client.get("/api/referrals?status=no-slot").get_json()["items"]
        if last:
            break
        assert full < 200
    referral_id = last[0]["id"]
    clock.moment += timedelta(days=2)
    response = client.post(f"/api/referrals/{referral_id}/retry")
    assert response.status_code == 202
    assert _task(client, referral_id)["businessStatus"]["coding"][0]["code"] == "eligible"
    # A second retry while the first is queued is refused: one booking attempt at a time.
    assert client.post(f"/api/referrals/{referral_id}/retry").status_code == 409
    Worker(runtime).run_until_idle()
    # The window still closes one day after receipt: staff see no-slot again, nothing is
    # booked outside the clinical window behind their backs.
    assert _task(client, referral_id)["businessStatus"]["coding"][0]["code"] == "no-slot"
    assert client.post("/api/referrals/nothing/retry").status_code == 404


def test_openapi_document_describes_the_staff_api(client) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/referrals/{referral_id}/review" in spec["paths"]
    assert "ReviewRequest" in spec["components"]["schemas"]
