"""FHIR Task and Appointment reads and searches: how a referrer follows its referral."""

from __future__ import annotations

from flask import Blueprint, Response

from referral_service.adapters.db import queries
from referral_service.api.fhir_io import check_accept, etag, fhir_response, runtime
from referral_service.api.identity import scope_sender
from referral_service.api.search_params import read_search, search_bundle
from referral_service.fhir import search_parameters

tracking_bp = Blueprint("fhir_tracking", __name__)


@tracking_bp.get("/fhir/Task/<task_id>")
def read_task(task_id: str) -> Response:
    check_accept()
    resource = queries.task_resource(runtime().engine, scope_sender(), task_id)
    return fhir_response(resource, 200, {"ETag": etag(int(resource["meta"]["versionId"]))})


@tracking_bp.get("/fhir/Task")
@tracking_bp.post("/fhir/Task/_search")
def search_tasks() -> Response:
    check_accept()
    criteria = read_search(search_parameters.TASK)
    page = queries.search_tasks(runtime().engine, scope_sender(), criteria, runtime().now())
    return fhir_response(search_bundle("Task", page.resources, page.total, criteria))


@tracking_bp.get("/fhir/Appointment/<appointment_id>")
def read_appointment(appointment_id: str) -> Response:
    check_accept()
    resource = queries.appointment_resource(runtime().engine, scope_sender(), appointment_id)
    version = int((resource.get("meta") or {}).get("versionId", 1))
    return fhir_response(resource, 200, {"ETag": etag(version)})


@tracking_bp.get("/fhir/Appointment")
@tracking_bp.post("/fhir/Appointment/_search")
def search_appointments() -> Response:
    check_accept()
    criteria = read_search(search_parameters.APPOINTMENT)
    page = queries.search_appointments(runtime().engine, scope_sender(), criteria, runtime().now())
    return fhir_response(search_bundle("Appointment", page.resources, page.total, criteria))
