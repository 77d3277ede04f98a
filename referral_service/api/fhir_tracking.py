"""FHIR Task and Appointment reads and searches: how a referrer follows its referral."""

from __future__ import annotations

from flask import Blueprint, Response, request

from referral_service.adapters.db import queries
from referral_service.api.fhir_io import check_accept, etag, fhir_response, runtime
from referral_service.api.identity import scope_sender
from referral_service.api.search_params import page_args, searchset, token_list
from referral_service.fhir.referral import parse_identifier_query

tracking_bp = Blueprint("fhir_tracking", __name__)


@tracking_bp.get("/fhir/Task/<task_id>")
def read_task(task_id: str) -> Response:
    check_accept()
    resource = queries.task_resource(runtime().engine, scope_sender(), task_id)
    return fhir_response(resource, 200, {"ETag": etag(int(resource["meta"]["versionId"]))})


@tracking_bp.get("/fhir/Task")
def search_tasks() -> Response:
    check_accept()
    count, offset = page_args()
    identifier = request.args.get("identifier")
    page = queries.search_tasks(
        runtime().engine,
        scope_sender(),
        focus=request.args.get("focus") or request.args.get("based-on"),
        status=token_list("status"),
        task_id=request.args.get("_id"),
        count=count,
        offset=offset,
        identifier=parse_identifier_query(identifier) if identifier else None,
    )
    return fhir_response(searchset(page.resources, page.total, count, offset))


@tracking_bp.get("/fhir/Appointment/<appointment_id>")
def read_appointment(appointment_id: str) -> Response:
    check_accept()
    resource = queries.appointment_resource(runtime().engine, scope_sender(), appointment_id)
    version = int((resource.get("meta") or {}).get("versionId", 1))
    return fhir_response(resource, 200, {"ETag": etag(version)})


@tracking_bp.get("/fhir/Appointment")
def search_appointments() -> Response:
    check_accept()
    count, offset = page_args()
    page = queries.search_appointments(
        runtime().engine,
        scope_sender(),
        based_on=request.args.get("based-on"),
        count=count,
        offset=offset,
    )
    return fhir_response(searchset(page.resources, page.total, count, offset))
