"""Everything the service sends is valid FHIR: checked with fhir.resources' R4B models."""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class

from referral_service.fhir.validation import validate_resource
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral


def _valid(resource: dict) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert validate_resource(resource) == [], resource["resourceType"]


def test_outbound_resources_validate(client, runtime) -> None:
    created = client.post(
        "/fhir/ServiceRequest",
        json=eligible_referral("valid-1"),
        headers={"Content-Type": FHIR_JSON},
    )
    referral_id = created.get_json()["id"]
    Worker(runtime).run_until_idle()
    task_bundle = client.get(f"/fhir/Task?focus=ServiceRequest/{referral_id}").get_json()
    task = task_bundle["entry"][0]["resource"]
    appointment_bundle = client.get(
        f"/fhir/Appointment?based-on=ServiceRequest/{referral_id}"
    ).get_json()
    for resource in (
        created.get_json(),
        task_bundle,
        task,
        appointment_bundle,
        appointment_bundle["entry"][0]["resource"],
        client.get("/fhir/metadata").get_json(),
        client.get("/fhir/Task/nope").get_json(),
        client.post(
            "/fhir/ServiceRequest/$evaluate",
            json=eligible_referral("valid-2"),
            headers={"Content-Type": FHIR_JSON},
        ).get_json(),
    ):
        _valid(resource)
    assert task["businessStatus"]["coding"][0]["code"] == "booked"
