"""FHIR ServiceRequest endpoints: create, conditional create, update, read, vread, search,
and the $evaluate dry run."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, request

from referral_service.adapters.db import queries
from referral_service.api.audit import creation_recorder, recorded_in_transaction
from referral_service.api.fhir_io import (
    check_accept,
    etag,
    fhir_response,
    parse_if_match,
    public_base,
    read_resource,
    runtime,
    written_response,
)
from referral_service.api.identity import current_sender, scope_sender
from referral_service.api.search_params import read_search, search_bundle
from referral_service.fhir import search_parameters
from referral_service.fhir.history import history_bundle
from referral_service.fhir.outcome import MethodNotAllowed, NotFound, Unreadable
from referral_service.fhir.parameters import decision_parameters
from referral_service.fhir.referral import require_identifier_query
from referral_service.observability import metrics
from referral_service.services.assessment.evaluate import dry_run_evaluation
from referral_service.services.intake import referrals as intake
from referral_service.services.intake import revisions

referrals_bp = Blueprint("fhir_referrals", __name__)


def _options(source: str = "direct") -> intake.IntakeOptions:
    return intake.IntakeOptions(source=source)


def _location(referral_id: str, version_id: int) -> dict[str, str]:
    root = public_base()
    return {
        "Location": f"{root}/fhir/ServiceRequest/{referral_id}/_history/{version_id}",
        "ETag": etag(version_id),
    }


def _stored(referral_id: str, status: int) -> Response:
    resource = queries.referral_resource(runtime().engine, None, referral_id)
    version = int(resource["meta"]["versionId"])
    return written_response(resource, status, _location(referral_id, version))


@referrals_bp.post("/fhir/ServiceRequest")
def create_referral() -> Response:
    check_accept()
    document = read_resource()
    sender = current_sender()
    if request.headers.get("If-None-Exist"):
        existing = _conditional_match(sender, request.headers["If-None-Exist"])
        if existing is not None:
            return _stored(existing, 200)
    result = intake.receive_referral(
        runtime(),
        sender=sender,
        document=document,
        now=runtime().now(),
        options=replace(_options(), audit=creation_recorder()),
    )
    if result.created:
        recorded_in_transaction()
        metrics.referral_received("direct")
    if not result.created:
        return _stored(result.referral_id, 200)
    # Rendered from what was just written: a read-back would cost a round trip per referral.
    resource = queries.render_referral(document, result.referral_id, 1, result.last_updated)
    return written_response(resource, 201, _location(result.referral_id, 1))


def _conditional_match(sender: str, header: str) -> str | None:
    name, _, value = header.partition("=")
    if name.strip() != "identifier":
        raise Unreadable.single(
            "not-supported", "If-None-Exist supports identifier=system|value", "If-None-Exist"
        )
    identifier = require_identifier_query(value.strip())
    return intake.find_existing(runtime(), sender, [identifier])


@referrals_bp.put("/fhir/ServiceRequest/<referral_id>")
def update_referral(referral_id: str) -> Response:
    check_accept()
    document = read_resource()
    result = revisions.update_referral(
        runtime(),
        sender=current_sender(),
        referral_id=referral_id,
        document=document,
        if_match=parse_if_match(request.headers.get("If-Match")),
        now=runtime().now(),
        options=_options(),
    )
    return _stored(referral_id, 200 if result.version_id > 1 else 201)


@referrals_bp.get("/fhir/ServiceRequest/<referral_id>")
def read_referral(referral_id: str) -> Response:
    check_accept()
    resource = queries.referral_resource(runtime().engine, scope_sender(), referral_id)
    version = resource["meta"]["versionId"]
    return fhir_response(
        resource,
        200,
        {"ETag": etag(int(version)), "Last-Modified": resource["meta"]["lastUpdated"]},
    )


@referrals_bp.get("/fhir/ServiceRequest/<referral_id>/_history/<version_id>")
def read_referral_version(referral_id: str, version_id: str) -> Response:
    check_accept()
    if not version_id.isdigit():
        raise NotFound.single("not-found", f"version {version_id} is not known")
    resource = queries.referral_version(
        runtime().engine, scope_sender(), referral_id, int(version_id)
    )
    return fhir_response(resource, 200, {"ETag": etag(int(version_id))})


@referrals_bp.get("/fhir/ServiceRequest")
@referrals_bp.post("/fhir/ServiceRequest/_search")
def search_referrals() -> Response:
    check_accept()
    criteria = read_search(search_parameters.SERVICE_REQUEST)
    page = queries.search_referrals(runtime().engine, scope_sender(), criteria, runtime().now())
    return fhir_response(search_bundle("ServiceRequest", page.resources, page.total, criteria))


@referrals_bp.get("/fhir/ServiceRequest/<referral_id>/_history")
def referral_history(referral_id: str) -> Response:
    """Every version is kept (vread reads them): the instance history is all of them."""
    check_accept()
    versions = queries.referral_history(runtime().engine, scope_sender(), referral_id)
    return fhir_response(
        history_bundle(versions, public_base(), f"ServiceRequest/{referral_id}/_history")
    )


@referrals_bp.post("/fhir/ServiceRequest/$evaluate")
def evaluate_referral() -> Response:
    check_accept()
    document = read_resource()
    decision = dry_run_evaluation(runtime(), document)
    return fhir_response(decision_parameters(decision))


@referrals_bp.route("/fhir/ServiceRequest/<referral_id>", methods=["DELETE", "PATCH"])
def unsupported_write(referral_id: str) -> Response:
    raise MethodNotAllowed.single(
        "not-supported",
        "referrals are not deleted; PUT the ServiceRequest with status revoked to cancel",
    )
