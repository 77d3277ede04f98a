"""The Flask application factory."""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, Response, g, request

from referral_service.api.audit import audit_bp, init_audit
from referral_service.api.auth import init_auth
from referral_service.api.capability import capability_bp
from referral_service.api.cds_hooks import cds_hooks_bp
from referral_service.api.console import console_bp
from referral_service.api.errors import register_error_handlers
from referral_service.api.fhir_bundle import bundle_bp
from referral_service.api.fhir_history import history_bp
from referral_service.api.fhir_messaging import messaging_bp
from referral_service.api.fhir_placer_task import placer_task_bp
from referral_service.api.fhir_questionnaire import questionnaire_bp
from referral_service.api.fhir_referrals import referrals_bp
from referral_service.api.fhir_resources import resources_bp
from referral_service.api.fhir_subscriptions import subscriptions_bp
from referral_service.api.fhir_tracking import tracking_bp
from referral_service.api.input_guard import init_input_guard
from referral_service.api.limits import init_limits
from referral_service.api.operations import operations_bp
from referral_service.api.referral_form_page import form_page_bp
from referral_service.api.staff import staff_bp
from referral_service.api.webhooks import webhooks_bp
from referral_service.config import Settings
from referral_service.runtime import Runtime

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    runtime = runtime or Runtime(settings)
    runtime.check_configuration()
    runtime.migrate_if_sqlite()
    app = Flask(__name__)
    # Werkzeug refuses bigger bodies with 413 before any of our code reads them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["referral_service"] = runtime
    for blueprint in (
        capability_bp,
        referrals_bp,
        bundle_bp,
        tracking_bp,
        resources_bp,
        questionnaire_bp,
        form_page_bp,
        placer_task_bp,
        messaging_bp,
        history_bp,
        staff_bp,
        operations_bp,
        audit_bp,
        console_bp,
        cds_hooks_bp,
        webhooks_bp,
        subscriptions_bp,
    ):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    _install_request_hooks(app, settings, runtime)
    init_security(app, settings)
    # After auth and limits: a stranger gets 401, and a form is read under the body deadline.
    init_input_guard(app)
    return app


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _install_request_hooks(app: Flask, settings: Settings, runtime: Runtime) -> None:
    @app.before_request
    def _start() -> None:
        offered = request.headers.get("X-Request-ID", "")
        # A caller's id is kept only if it looks like one: it goes into every log line.
        g.request_id = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        g.started = time.monotonic()
        if settings.auth == "none":
            # Auth off means loopback only: the one local caller may read everything.
            g.is_staff = True

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if (
            runtime.wake_sender is not None
            and request.method in _WRITES
            and response.status_code < 300
        ):
            # Whatever the request queued is committed by now; the worker need not wait a poll.
            runtime.wake_sender.ring()
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def init_security(app: Flask, settings: Settings) -> None:
    """Auth first (it names the client), then per-client rate limits, then the audit trail."""
    init_auth(app, settings)
    init_limits(app, settings)
    init_audit(app, settings)
