"""The referral form as a web page, for referrers without a FHIR-writing EHR: opened by the
signed link a needs-information Task carries, it asks only what the referral misses and
shows nothing of the patient. Submitting stores a QuestionnaireResponse and resumes the
referral (services/intake/form_answers)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request

from referral_service.api.fhir_io import runtime
from referral_service.domain.errors import DomainError
from referral_service.domain.referral_form import ReferralForm
from referral_service.fhir.outcome import FhirError
from referral_service.fhir.questionnaire_response import check_response
from referral_service.services.form_links import LinkRefused
from referral_service.services.intake.form_answers import (
    OpenForm,
    open_form_link,
    take_questionnaire_response,
)

form_page_bp = Blueprint("referral_form_page", __name__, template_folder="templates")

PREVENTIVE_ROWS = 3
_REFUSED = {
    "expired": (410, "This link has expired. Ask the clinic for a new one."),
    "superseded": (410, "This link is no longer current: the referral has moved on."),
    "used": (409, "This link has already been used to send answers."),
    "invalid": (404, "This link is not valid."),
}


def _refused(reason: str) -> Response:
    status, message = _REFUSED[reason]
    return Response(render_template("referral_form/refused.html", message=message), status)


def _open(token: str) -> OpenForm | Response:
    links = runtime().form_links
    if links is None:
        return _refused("invalid")
    try:
        return open_form_link(runtime(), links, token[:1000])
    except LinkRefused as exc:
        return _refused(exc.reason)


@form_page_bp.get("/referral-form/<token>")
def show_form(token: str) -> Response:
    opened = _open(token)
    if isinstance(opened, Response):
        return opened
    return _page(opened, {}, {})


@form_page_bp.post("/referral-form/<token>")
def submit_form(token: str) -> Response:
    opened = _open(token)
    if isinstance(opened, Response):
        return opened
    form = runtime().policy.form
    values = {k: v.strip() for k, v in request.form.items()}
    items, errors = read_answers(form, opened.link_ids, values)
    document = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": form.canonical,
        "status": "completed",
        "authored": runtime().now().isoformat(),
        "item": items,
    }
    try:  # what could be read is checked too, so every error shows at once
        check_response(document, form)
    except FhirError as exc:
        errors = {**_field_errors(exc), **errors}
    if not errors:
        try:
            take_questionnaire_response(
                runtime(),
                sender=opened.sender,
                referral_id=opened.referral_id,
                document=document,
                now=runtime().now(),
                link_digest=opened.digest,
            )
        except FhirError as exc:
            errors = _field_errors(exc)
        except DomainError:
            return _refused("used")
        else:
            return Response(render_template("referral_form/thanks.html"), 200)
    return _page(opened, values, errors, status=422)


def _page(
    opened: OpenForm, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    form = runtime().policy.form
    html = render_template(
        "referral_form/form.html",
        groups=_groups(form, opened.link_ids),
        values=values,
        errors=errors,
        rows=range(PREVENTIVE_ROWS),
        title=form.questionnaire.get("title", "Referral form"),
    )
    return Response(html, status)


def _groups(form: ReferralForm, asked: tuple[str, ...]) -> list[dict[str, Any]]:
    """The form's groups holding an asked item, each with only its asked items."""
    found: dict[str, dict[str, Any]] = {}
    for link in asked:
        parent = form.parents[link]
        group = form.items[parent] if parent else {"linkId": "", "text": ""}
        entry = found.setdefault(parent, {"group": group, "items": []})
        entry["items"].append(_field(form.items[link]))
    return list(found.values())


def _field(item: dict[str, Any]) -> dict[str, Any]:
    ext = {e["url"].rsplit("/", 1)[-1]: e for e in item.get("extension", [])}
    low = ext.get("minValue", {})
    high = ext.get("maxValue", {})
    unit = ext.get("questionnaire-unit", {}).get("valueCoding", {}).get("display", "")
    return {
        "item": item,
        "min": next((v for k, v in low.items() if k.startswith("value")), None),
        "max": next((v for k, v in high.items() if k.startswith("value")), None),
        "unit": unit,
        "options": [o["valueCoding"] for o in item.get("answerOption", [])],
    }


def _field_errors(exc: FhirError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for issue in exc.issues:
        for where in issue.expression or ("",):
            link = where.split("linkId='")[-1].rstrip("')") if "linkId='" in where else "form"
            errors.setdefault(link, issue.diagnostics.split(": ", 1)[-1])
    return errors


def read_answers(
    form: ReferralForm, asked: tuple[str, ...], values: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The page's fields as QuestionnaireResponse items (grouped as in the form), and what
    could not be read, by field name."""
    errors: dict[str, str] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    repeating: list[dict[str, Any]] = []
    for link in asked:
        item = form.items[link]
        parent = form.parents[link]
        if form.items.get(parent, {}).get("repeats"):
            continue
        value = _read(item, values.get(link, ""), link, errors)
        if value is not None:
            groups.setdefault(parent, []).append({"linkId": link, "answer": [value]})
    for parent in dict.fromkeys(form.parents[k] for k in asked):
        if form.items.get(parent, {}).get("repeats"):
            repeating += _repeats(form, parent, asked, values, errors)
    items = [{"linkId": p, "item": children} for p, children in groups.items() if p] + repeating
    return items, errors


def _repeats(
    form: ReferralForm, parent: str, asked: tuple[str, ...], values: dict[str, str], errors: dict
) -> list[dict[str, Any]]:
    found = []
    links = [k for k in asked if form.parents[k] == parent]
    for row in range(PREVENTIVE_ROWS):
        names = {link: f"{link}.{row}" for link in links}
        if not any(values.get(name) for name in names.values()):
            continue
        children = []
        for link, name in names.items():
            item = form.items[link]
            value = _read(item, values.get(name, ""), name, errors)
            if value is not None:
                children.append({"linkId": link, "answer": [value]})
            elif item.get("required") and name not in errors:
                errors[name] = "Needed for each medicine you list."
        found.append({"linkId": parent, "item": children})
    return found


def _read(item: dict[str, Any], raw: str, name: str, errors: dict[str, str]) -> dict | None:
    if raw == "":
        return None
    kind = item["type"]
    try:
        if kind == "integer":
            return {"valueInteger": int(raw)}
        if kind == "decimal":
            return {"valueDecimal": float(raw)}
    except ValueError:
        errors[name] = "Enter a whole number." if kind == "integer" else "Enter a number."
        return None
    if kind == "boolean":
        return {"valueBoolean": raw == "yes"}
    if kind == "date":
        return {"valueDate": raw}
    if kind == "choice":
        option = next(
            (
                o["valueCoding"]
                for o in item.get("answerOption", [])
                if o["valueCoding"]["code"] == raw
            ),
            None,
        )
        if option is None:
            errors[name] = "Choose one of the answers."
            return None
        return {"valueCoding": option}
    return {"valueString": raw}
