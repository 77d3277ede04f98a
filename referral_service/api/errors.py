"""Every error leaves as the same shape: an OperationOutcome under /fhir and /webhooks, a small
JSON object under /api. No stack trace, SQL or submitted content ever reaches a client."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from referral_service.api.fhir_io import fhir_response
from referral_service.domain.errors import DomainError
from referral_service.fhir.outcome import FhirError, Issue, as_fhir_error, operation_outcome

log = logging.getLogger(__name__)

_HTTP_ISSUE_CODES = {
    400: "invalid",
    401: "security",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
}


def _wants_json_api() -> bool:
    return request.path.startswith("/api/")


def _respond(status: int, issues: tuple[Issue, ...], headers: dict[str, str]) -> Response:
    if _wants_json_api():
        response = jsonify(
            {
                "error": "; ".join(i.diagnostics for i in issues),
                "status": status,
                "issues": [i.to_fhir() for i in issues],
            }
        )
        response.status_code = status
    else:
        response = fhir_response(operation_outcome(issues), status)
    for name, value in headers.items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(FhirError)
    def _fhir_error(exc: FhirError) -> Response:
        return _respond(exc.status, exc.issues, exc.headers)

    @app.errorhandler(DomainError)
    def _refused(exc: DomainError) -> Response:
        error = as_fhir_error(exc)
        return _respond(error.status, error.issues, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_ISSUE_CODES.get(status, "exception")
        headers = dict(exc.get_headers()) if status in (405, 429) else {}
        headers.pop("Content-Type", None)
        issue = Issue(code, exc.description or exc.name)
        if status == 413:
            issue = Issue(code, "the request body is over the size limit")
        return _respond(status, (issue,), headers)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError) -> Response:
        # The database is down or restarting: not the client's fault, and worth a retry.
        log.error(
            "database unavailable (%s) on %s %s",
            type(exc.orig).__name__,
            request.method,
            request.path,
        )
        issue = Issue("transient", "the service's database is unavailable; nothing was stored")
        return _respond(503, (issue,), {"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The type only: messages of parser or driver errors can carry submitted content.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        return _respond(
            500, (Issue("exception", "internal error; the request was not stored"),), {}
        )
