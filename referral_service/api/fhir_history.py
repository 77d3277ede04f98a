"""The `_history` interactions this service does not offer, answered as an OperationOutcome that
says what it does offer: only a referral keeps its versions (ServiceRequest/{id}/_history)."""

from __future__ import annotations

from flask import Blueprint, Response

from referral_service.api.fhir_io import check_accept
from referral_service.fhir.outcome import NotFound
from referral_service.services.intake.resources import PUSHED_TYPES

history_bp = Blueprint("fhir_history", __name__)

_ONLY_REFERRALS = "only a referral's versions are kept: GET ServiceRequest/{id}/_history"
# Current version only: each write replaces the last, so no history could be told.
_CURRENT_ONLY = ("Task", "Appointment", "AuditEvent", *PUSHED_TYPES)


def _refuse(what: str) -> Response:
    raise NotFound.single("not-supported", f"{what} is not supported; {_ONLY_REFERRALS}")


@history_bp.get("/fhir/_history")
def system_history() -> Response:
    check_accept()
    return _refuse("the system history")


def _type_history(resource_type: str) -> Response:
    check_accept()
    return _refuse(f"the history of every {resource_type}")


def _instance_history(resource_type: str, resource_id: str) -> Response:
    check_accept()
    return _refuse(f"{resource_type} history")


# Static rules: a type named in the path outranks `/fhir/<type>/<id>` in Werkzeug's matching.
for _kind in ("ServiceRequest", *_CURRENT_ONLY):
    history_bp.add_url_rule(
        f"/fhir/{_kind}/_history",
        f"type_history_{_kind}",
        _type_history,
        defaults={"resource_type": _kind},
    )
for _kind in _CURRENT_ONLY:
    history_bp.add_url_rule(
        f"/fhir/{_kind}/<resource_id>/_history",
        f"instance_history_{_kind}",
        _instance_history,
        defaults={"resource_type": _kind},
    )
