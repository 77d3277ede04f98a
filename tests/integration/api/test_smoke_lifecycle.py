"""A referral through the whole local path: POST, worker, Task booked, Appointment readable."""

from __future__ import annotations

from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral


def test_referral_is_received_evaluated_and_booked(client, runtime) -> None:
    response = client.post(
        "/fhir/ServiceRequest",
        json=eligible_referral("smoke-1"),
        headers={"Content-Type": FHIR_JSON},
    )
    assert response.status_code == 201, response.get_json()
    referral_id = response.get_json()["id"]
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/ServiceRequest/{referral_id}/_history/1")

    tasks = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    assert tasks["total"] == 1
    assert tasks["entry"][0]["resource"]["status"] == "received"

    assert Worker(runtime).run_until_idle() >= 2

    task = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()["entry"][0][
        "resource"
    ]
    assert task["businessStatus"]["coding"][0]["code"] == "booked", task
    assert task["status"] == "accepted"
    appointment_ref = task["output"][0]["valueReference"]["reference"]
    appointment = client.get(f"/fhir/{appointment_ref}").get_json()
    assert appointment["status"] == "booked"
    # The referral's Patient was contained in the ServiceRequest: the Appointment carries it,
    # so its patient participant resolves, and the chair is a Location or Device.
    patient_actor, chair_actor = (p["actor"] for p in appointment["participant"])
    assert patient_actor == {"reference": "#patient"}
    assert appointment["contained"][0]["resourceType"] == "Patient"
    assert chair_actor["identifier"]["system"].endswith("/chair")
    assert any(b["reference"].endswith(referral_id) for b in appointment["basedOn"])
