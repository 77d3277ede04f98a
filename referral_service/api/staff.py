"""The staff/ops JSON API (`/api`), with marshmallow schemas and an OpenAPI document."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, g, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate

from referral_service import __version__
from referral_service.api.fhir_io import runtime
from referral_service.fhir.outcome import Issue, Unprocessable
from referral_service.services.staff import review as staff

staff_bp = Blueprint("staff", __name__)


class ReferralListQuery(Schema):
    status = fields.String(load_default=None)
    decision = fields.String(
        load_default=None,
        validate=validate.OneOf(
            ["eligible", "ineligible", "needs-information", "needs-review", "emergency-redirect"]
        ),
    )
    count = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class ReferralSummary(Schema):
    id = fields.String()
    task_id = fields.String()
    sender = fields.String()
    priority = fields.String(allow_none=True)
    decision_outcome = fields.String(allow_none=True)
    status = fields.String()
    business_status = fields.String()
    received_at = fields.DateTime()


class ReferralDetail(Schema):
    id = fields.String()
    sender = fields.String()
    version = fields.Integer()
    status = fields.String()
    priority = fields.String(allow_none=True)
    received_at = fields.DateTime()
    decision = fields.Dict(allow_none=True)
    task = fields.Dict(allow_none=True)
    appointment = fields.Dict(allow_none=True)
    events = fields.List(fields.Dict())


class ReviewRequest(Schema):
    action = fields.String(required=True, validate=validate.OneOf(["approve", "decline"]))
    note = fields.String(load_default="", validate=validate.Length(max=2000))


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ValidationError as exc:
        issues = [
            Issue("invalid", f"{field}: {'; '.join(map(str, messages))}", (field,))
            for field, messages in _flatten(exc.messages)
        ]
        raise Unprocessable(*issues) from None


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, list[str]]]:
    if isinstance(messages, dict):
        return [
            item
            for key, value in messages.items()
            for item in _flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
        ]
    return [(prefix or "body", messages if isinstance(messages, list) else [messages])]


@staff_bp.get("/api/referrals")
def list_referrals() -> Response:
    query = _load(ReferralListQuery(), request.args.to_dict())
    items = staff.list_referrals(
        runtime(),
        status=query["status"],
        decision=query["decision"],
        count=query["count"],
        offset=query["offset"],
    )
    return jsonify({"items": ReferralSummary(many=True).dump(items)})


@staff_bp.get("/api/referrals/<referral_id>")
def get_referral(referral_id: str) -> Response:
    return jsonify(ReferralDetail().dump(staff.referral_detail(runtime(), referral_id)))


@staff_bp.post("/api/referrals/<referral_id>/review")
def review_referral(referral_id: str) -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Unprocessable.single("structure", "send a JSON object: {action, note}")
    data = _load(ReviewRequest(), body)
    staff.review(
        runtime(),
        referral_id,
        action=data["action"],
        note=data["note"],
        reviewer=str(g.get("sender", "staff")),
    )
    return jsonify(ReferralDetail().dump(staff.referral_detail(runtime(), referral_id)))


@staff_bp.post("/api/referrals/<referral_id>/retry")
def retry_referral(referral_id: str) -> Response:
    staff.retry(runtime(), referral_id)
    response = jsonify(ReferralDetail().dump(staff.referral_detail(runtime(), referral_id)))
    response.status_code = 202
    return response


def openapi_document() -> dict[str, Any]:
    spec = APISpec(
        title="referral-service staff API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    for schema in (ReferralSummary, ReferralDetail, ReviewRequest):
        spec.components.schema(schema.__name__, schema=schema)
    ok = {
        "description": "the referral",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ReferralDetail"}}
        },
    }
    referral_id = {
        "name": "referral_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    spec.path(
        path="/api/referrals",
        operations={
            "get": {
                "parameters": [{"in": "query", "schema": ReferralListQuery}],
                "responses": {"200": {"description": "referrals, newest first"}},
            }
        },
    )
    spec.path(
        path="/api/referrals/{referral_id}",
        operations={
            "get": {
                "parameters": [referral_id],
                "responses": {"200": ok, "404": {"description": "unknown"}},
            }
        },
    )
    spec.path(
        path="/api/referrals/{referral_id}/review",
        operations={
            "post": {
                "parameters": [referral_id],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ReviewRequest"}
                        }
                    },
                },
                "responses": {
                    "200": ok,
                    "409": {"description": "not waiting for review"},
                    "422": {"description": "invalid body"},
                },
            }
        },
    )
    spec.path(
        path="/api/referrals/{referral_id}/retry",
        operations={
            "post": {
                "parameters": [referral_id],
                "responses": {"202": ok, "409": {"description": "not a failed booking"}},
            }
        },
    )
    return spec.to_dict()


@staff_bp.get("/api/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
