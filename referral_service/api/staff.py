"""The staff/ops JSON API (`/api`), with marshmallow schemas and an OpenAPI document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, g, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate

from referral_service import __version__
from referral_service.api.fhir_io import runtime
from referral_service.api.limits import MAX_PAGE_OFFSET
from referral_service.fhir.outcome import Issue, Unprocessable
from referral_service.services.staff import console
from referral_service.services.staff import review as staff

staff_bp = Blueprint("staff", __name__)


# The staff API's one rule for query values: a parameter is either absent or one of the values
# its schema lists; an empty value (`?status=`) is refused with 422 like any other unknown one.
TASK_STATES = (
    "received",
    "accepted",
    "rejected",
    "on-hold",
    "failed",
    "cancelled",
    "needs-review",
    "needs-information",
    "eligible",
    "ineligible",
    "emergency-redirect",
    "booked",
    "no-slot",
    "ehr-retrying",
    "ehr-failed",
)
DECISIONS = ("eligible", "ineligible", "needs-information", "needs-review", "emergency-redirect")
REFERRAL_ID = r"^[A-Za-z0-9-]{1,64}$"
# FHIR strings: no control character but tab, line feed and carriage return (the input guard
# refuses the others with 400 before the schema is read).
FHIR_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"


class ReferralListQuery(Schema):
    status = fields.String(
        validate=validate.OneOf(TASK_STATES),
        metadata={"description": "Task status or businessStatus"},
    )
    decision = fields.String(validate=validate.OneOf(DECISIONS))
    count = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_PAGE_OFFSET))


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
    story = fields.Dict(metadata={"description": "the referral in plain words, codes named"})


class ReferralList(Schema):
    items = fields.List(fields.Nested(ReferralSummary))


class ReviewRequest(Schema):
    action = fields.String(required=True, validate=validate.OneOf(["approve", "decline"]))
    note = fields.String(
        load_default="", validate=[validate.Length(max=2000), validate.Regexp(FHIR_TEXT)]
    )


class Problem(Schema):
    """Every error of the staff API."""

    error = fields.String(required=True)
    status = fields.Integer(required=True)
    issues = fields.List(fields.Dict(), required=True)


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
        status=query.get("status"),
        decision=query.get("decision"),
        count=query["count"],
        offset=query["offset"],
    )
    return jsonify({"items": ReferralSummary(many=True).dump(items)})


@staff_bp.get("/api/referrals/<referral_id>")
def get_referral(referral_id: str) -> Response:
    detail = staff.referral_detail(runtime(), referral_id)
    detail["story"] = asdict(console.referral_story(runtime(), referral_id))
    return jsonify(ReferralDetail().dump(detail))


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
    """Every status each route can answer, every bound of every parameter (issue 18)."""
    spec = APISpec(
        title="referral-service staff API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    for schema in (ReferralSummary, ReferralList, ReferralDetail, ReviewRequest, Problem):
        spec.components.schema(schema.__name__, schema=schema)
    referral_id = {
        "name": "referral_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": REFERRAL_ID, "maxLength": 64},
    }
    detail = _json("the referral", "ReferralDetail")
    spec.path(
        path="/api/referrals",
        operations={
            "get": {
                "parameters": [{"in": "query", "schema": ReferralListQuery}],
                "responses": _answers(
                    {"200": _json("referrals, newest first", "ReferralList")},
                    {"422": "a query parameter is empty, unknown or out of its bounds"},
                ),
            }
        },
    )
    spec.path(
        path="/api/referrals/{referral_id}",
        operations={
            "get": {
                "parameters": [referral_id],
                "responses": _answers({"200": detail}, {"404": "no such referral"}),
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
                "responses": _answers(
                    {"200": detail},
                    {
                        "404": "no such referral",
                        "409": "not waiting for review",
                        "413": "the body is over the size limit",
                        "422": "invalid body",
                    },
                ),
            }
        },
    )
    spec.path(
        path="/api/referrals/{referral_id}/retry",
        operations={
            "post": {
                "parameters": [referral_id],
                "responses": _answers(
                    {"202": detail},
                    {"404": "no such referral", "409": "not a failed booking"},
                ),
            }
        },
    )
    return spec.to_dict()


def _json(description: str, schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


# What any route may answer: bad characters or paging (400), missing or insufficient
# credentials (401, 403), the rate limit (429), the database away (503).
_EVERY_ROUTE = {
    "400": "a control character in the URL or body, or absurd paging",
    "401": "no valid credentials",
    "403": "not staff",
    "429": "over the rate limit",
    "503": "the database is unavailable",
}


def _answers(success: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    problems = {**_EVERY_ROUTE, **errors}
    return {
        **success,
        **{status: _json(text, "Problem") for status, text in sorted(problems.items())},
    }


@staff_bp.get("/api/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
