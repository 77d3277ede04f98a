"""Real FHIR clients (fhirpy, fhirclient) against the running service over real HTTP, on SQLite
and PostgreSQL (issue 21): what they send and how they page is the specification."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from fhirclient import client as fhirclient_client
from fhirclient.models.appointment import Appointment as FcAppointment
from fhirclient.models.servicerequest import ServiceRequest as FcServiceRequest
from fhirclient.models.task import Task as FcTask
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as FhirpyOutcome

from referral_service.adapters.db import migrate
from referral_service.adapters.db.engine import make_engine
from tests.support.referrals import eligible_referral, service_request
from tests.support.service import RunningService, serve

REFERRALS = "https://er.example.org/referrals"
SEVEN = 7  # referrals for the paged patient: pages of 3 make 3 pages


@dataclass
class Clinic:
    service: RunningService
    patient_id: str
    referral_ids: list[str]
    booked_referral: str

    @property
    def fhir(self) -> str:
        return f"{self.service.base_url}/fhir"


@pytest.fixture
def clinic(database_url: str, tmp_path: Path) -> Iterator[Clinic]:
    if not database_url.startswith("sqlite"):
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        engine.dispose()
    with serve(tmp_path, {"REFERRAL_DATABASE_URL": database_url}) as service:
        fhirpy = SyncFHIRClient(f"{service.base_url}/fhir")
        patient = fhirpy.resource(
            "Patient", name=[{"family": "Clientperson"}], gender="female", birthDate="1980-04-02"
        )
        patient.save()
        ids = []
        for n in range(SEVEN):
            referral = service_request(
                f"client-{n}",
                subject={"reference": f"Patient/{patient.id}"},
                requester={"reference": "Practitioner/dr-client"},
            )
            ids.append(fhirpy.resource("ServiceRequest", **referral).save().id)
        eligible = eligible_referral("client-booked")
        eligible["subject"] = {"reference": f"Patient/{patient.id}"}
        booked = fhirpy.resource("ServiceRequest", **eligible).save().id
        clinic = Clinic(service, str(patient.id), [str(i) for i in ids], str(booked))
        _wait_for_booking(fhirpy, clinic.booked_referral)
        yield clinic


def _wait_for_booking(fhirpy: SyncFHIRClient, referral_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fhirpy.resources("Appointment").search(based_on=f"ServiceRequest/{referral_id}").count():
            return
        time.sleep(0.3)
    raise AssertionError("the eligible referral was never booked")


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_fhirpy_create_read_search_page_and_strict(clinic: Clinic) -> None:
    fhirpy = SyncFHIRClient(clinic.fhir)
    referrals = fhirpy.resources("ServiceRequest")

    # conditional create as fhirpy does it: the search, then POST; 201 once, then 200
    again = service_request("client-0", subject={"reference": f"Patient/{clinic.patient_id}"})
    found, created = referrals.search(identifier=f"{REFERRALS}|client-0").get_or_create(
        fhirpy.resource("ServiceRequest", **again)
    )
    assert (found.id, created) == (clinic.referral_ids[0], False)
    fresh = service_request("client-new", subject={"reference": f"Patient/{clinic.patient_id}"})
    made, created = referrals.search(identifier=f"{REFERRALS}|client-new").get_or_create(
        fhirpy.resource("ServiceRequest", **fresh)
    )
    assert created and made.id not in clinic.referral_ids

    read = fhirpy.reference("ServiceRequest", clinic.referral_ids[3]).to_resource()
    assert read["identifier"][0]["value"] == "client-3"

    mine = {*clinic.referral_ids, made.id, clinic.booked_referral}
    patient = fhirpy.reference("Patient", clinic.patient_id)

    def ids(**params: object) -> set[str]:
        return {r.id for r in referrals.search(**params).limit(3).fetch_all()}

    assert ids(subject=patient) == mine
    assert ids(subject__Patient=clinic.patient_id) == mine
    assert ids(subject__Patient="Patient/nonexistent") == set()
    assert ids(patient=f"Patient/{clinic.patient_id}") == mine
    # client-0 was sent again without a requester: that made its new version
    assert ids(requester="Practitioner/dr-client") == set(clinic.referral_ids[1:])
    assert ids(requester__Practitioner="dr-other") == set()
    assert ids(identifier=f"{REFERRALS}|client-2") == {clinic.referral_ids[2]}
    assert ids(_id=",".join(clinic.referral_ids[:2])) == set(clinic.referral_ids[:2])
    assert ids(status="active") == mine
    assert ids(status__not="active") == set()
    assert ids(status="active", _lastUpdated=_today()) == mine
    assert ids(_lastUpdated__gt=_today()) == set()
    assert ids(_lastUpdated__ge=_today()[:7], _lastUpdated__lt="2100") == mine
    assert ids(_lastUpdated__ap=_today()) == mine
    assert ids(authored="2026-11-23") == mine
    assert ids(authored__sa="2026-11-23", authored__eb="2026-11-22") == set()
    assert referrals.search(subject=patient).count() == len(mine)

    tasks = fhirpy.resources("Task")
    task_ids = {t["focus"]["reference"] for t in tasks.search(subject=patient).fetch_all()}
    assert task_ids == {f"ServiceRequest/{i}" for i in mine}
    assert len(tasks.search(patient=patient, status="received,accepted").fetch_all()) >= 1
    assert tasks.search(status="accepted").search(status="received").count() == 0
    one = tasks.search(focus=f"ServiceRequest/{clinic.referral_ids[1]}").get()
    assert tasks.search(_id=one.id).get().id == one.id
    assert tasks.search(based_on=f"ServiceRequest/{clinic.referral_ids[1]}").get().id == one.id

    appointments = fhirpy.resources("Appointment")
    booked = appointments.search(based_on=f"ServiceRequest/{clinic.booked_referral}").get()
    assert booked.id in {a.id for a in appointments.search(patient=patient).fetch_all()}

    def appointment_ids(**params: object) -> set[str]:
        return {a.id for a in appointments.search(**params).fetch_all()}

    assert booked.id in appointment_ids(date=booked["start"][:10], status="booked")
    assert booked.id in appointment_ids(date=booked["start"])
    assert booked.id not in appointment_ids(date__gt=booked["start"])
    assert booked.id not in appointment_ids(date__ne=booked["start"][:10])
    assert appointments.search(patient__Patient="nobody").count() == 0

    strict = SyncFHIRClient(clinic.fhir, extra_headers={"Prefer": "handling=strict"})
    with pytest.raises(FhirpyOutcome) as refused:
        strict.resources("ServiceRequest").search(_sort="-authored").fetch()
    assert "_sort" in str(refused.value)
    lenient = referrals.search(subject=patient, _sort="-authored").limit(3)
    assert len(lenient.fetch_all()) == len(mine)


def test_fhirclient_reads_searches_and_pages_to_the_end(clinic: Clinic) -> None:
    smart = fhirclient_client.FHIRClient(
        settings={"app_id": "referral-tests", "api_base": f"{clinic.fhir}/"}
    )
    server = smart.server
    assert server.capabilityStatement.fhirVersion == "4.0.1"  # parsed by its R4 models

    read = FcServiceRequest.read(clinic.referral_ids[4], server)
    assert read.identifier[0].value == "client-4"

    patient_ref = f"Patient/{clinic.patient_id}"
    search = FcServiceRequest.where(struct={"subject": patient_ref, "_count": "3"})
    pages = list(search.perform_iter(server))
    assert len(pages) == 3  # 8 referrals, 3 a page
    seen = [entry.resource.id for page in pages for entry in page.entry or []]
    assert sorted(seen) == sorted([*clinic.referral_ids, clinic.booked_referral])
    relations = [{link.relation for link in page.link} for page in pages]
    assert relations[0] == {"self", "first", "next", "last"}
    assert relations[1] == {"self", "first", "previous", "next", "last"}
    assert relations[2] == {"self", "first", "previous", "last"}

    tasks = FcTask.where(struct={"patient": patient_ref, "status": "received"})
    assert all(t.status == "received" for t in tasks.perform_resources_iter(server))
    booked = list(
        FcAppointment.where(struct={"patient": patient_ref}).perform_resources_iter(server)
    )
    assert "booked" in {a.status for a in booked}

    nothing = FcServiceRequest.where(struct={"subject:Patient": "nonexistent"})
    empty = list(nothing.perform_iter(server))
    assert [page.total for page in empty] == [0] and empty[0].entry is None

    server.session.headers["Prefer"] = "handling=strict"
    refused = requests.get(
        f"{clinic.fhir}/Appointment",
        params={"actor": patient_ref},
        headers={"Prefer": "handling=strict"},
        timeout=10,
    )
    assert refused.status_code == 400
    with pytest.raises(Exception) as strict:
        list(FcTask.where(struct={"owner": "Organization/x"}).perform_iter(server))
    assert "400" in str(strict.value)


def test_post_search_over_http(clinic: Clinic) -> None:
    form = {"subject": f"Patient/{clinic.patient_id}", "_count": "100"}
    posted = requests.post(f"{clinic.fhir}/ServiceRequest/_search", data=form, timeout=10)
    got = requests.get(f"{clinic.fhir}/ServiceRequest", params=form, timeout=10)
    assert posted.status_code == got.status_code == 200
    assert posted.json() == got.json()
    assert posted.json()["total"] == SEVEN + 1
