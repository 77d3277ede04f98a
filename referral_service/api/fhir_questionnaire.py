"""The clinic's referral form: `GET /fhir/Questionnaire/{id}` and `GET /fhir/Questionnaire?url=`
(the form shipped with the policy; a policy's form replaces it)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from referral_service.api.fhir_io import check_accept, fhir_response, public_base, runtime
from referral_service.fhir.outcome import NotFound

questionnaire_bp = Blueprint("fhir_questionnaire", __name__)


def _form() -> dict[str, Any] | None:
    form = runtime().policy.form
    return form.questionnaire if form is not None else None


@questionnaire_bp.get("/fhir/Questionnaire/<questionnaire_id>")
def read_questionnaire(questionnaire_id: str) -> Response:
    check_accept()
    form = _form()
    if form is None or form["id"] != questionnaire_id:
        raise NotFound.single("not-found", f"Questionnaire/{questionnaire_id[:64]} is not known")
    return fhir_response(form)


@questionnaire_bp.get("/fhir/Questionnaire")
def search_questionnaire() -> Response:
    check_accept()
    form = _form()
    wanted = request.args.get("url")
    version = request.args.get("version")
    matches = (
        form is not None
        and (wanted is None or wanted in (form["url"], f"{form['url']}|{form['version']}"))
        and version in (None, form["version"])
    )
    entries = (
        [
            {
                "fullUrl": f"{public_base()}/fhir/Questionnaire/{form['id']}",
                "resource": form,
                "search": {"mode": "match"},
            }
        ]
        if matches and form is not None
        else []
    )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return fhir_response(bundle)


def _advertise(entries: list[dict[str, Any]]) -> None:
    # Only `read` is promised: the `?url=` lookup is not the full search the statement's
    # search-type entries stand for (strict handling, POST _search, modifiers).
    entries.append({"type": "Questionnaire", "interaction": [{"code": "read"}]})


@questionnaire_bp.record_once
def _register_capability(state: BlueprintSetupState) -> None:
    state.app.config.setdefault("CAPABILITY_EXTENSIONS", []).append(_advertise)
