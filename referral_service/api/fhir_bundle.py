"""POST /fhir: transaction and batch Bundles."""

from __future__ import annotations

from flask import Blueprint, Response

from referral_service.api.fhir_io import (
    check_accept,
    fhir_response,
    public_base,
    read_resource,
    runtime,
)
from referral_service.api.identity import current_sender
from referral_service.fhir.outcome import operation_outcome
from referral_service.fhir.validation import expect_resource_type
from referral_service.observability import metrics
from referral_service.services.intake import bundles
from referral_service.services.intake import referrals as intake

bundle_bp = Blueprint("fhir_bundle", __name__)


@bundle_bp.post("/fhir")
@bundle_bp.post("/fhir/")
def post_bundle() -> Response:
    check_accept()
    document = read_resource()
    expect_resource_type(document, "Bundle")
    options = intake.IntakeOptions(source="bundle")
    kind, results = bundles.process_bundle(
        runtime(),
        sender=current_sender(),
        bundle=document,
        now=runtime().now(),
        options=options,
    )
    for result in results:
        if result.referral_id and result.status.startswith("201"):
            metrics.referral_received("bundle")
    return fhir_response(
        {
            "resourceType": "Bundle",
            "type": f"{kind}-response",
            "entry": [_entry(result) for result in results],
        }
    )


def _entry(result: bundles.EntryResult) -> dict:
    response: dict = {"status": result.status}
    if result.location:
        response["location"] = f"{public_base()}/fhir/{result.location}"
    if result.etag:
        response["etag"] = result.etag
    if result.outcome:
        response["outcome"] = operation_outcome(result.outcome)
    return {"response": response}
