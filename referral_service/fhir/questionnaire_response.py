"""A QuestionnaireResponse to the clinic's referral form: checked against the form (422 naming
the item by linkId in `issue.expression`), and its answers turned into the facts the engine
reads by the policy's extraction map, each with the response as its evidence."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from referral_service.domain.referral_form import ReferralForm
from referral_service.fhir.outcome import Issue, Unprocessable

_ANSWER_KEYS = {
    "integer": ("valueInteger",),
    "decimal": ("valueDecimal", "valueInteger"),
    "string": ("valueString",),
    "text": ("valueString",),
    "boolean": ("valueBoolean",),
    "date": ("valueDate",),
    "dateTime": ("valueDateTime",),
    "choice": ("valueCoding",),
    "open-choice": ("valueCoding", "valueString"),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MIN = "http://hl7.org/fhir/StructureDefinition/minValue"
_MAX = "http://hl7.org/fhir/StructureDefinition/maxValue"
_MONTH_DAYS = 30  # a month of the form's "per month" counts, as the criteria count windows


def for_form(document: dict[str, Any], form: ReferralForm | None) -> bool:
    """Does this response answer the clinic's form (any version of its url)?"""
    canonical = document.get("questionnaire")
    return (
        form is not None and isinstance(canonical, str) and canonical.partition("|")[0] == form.url
    )


def check_response(document: dict[str, Any], form: ReferralForm) -> None:
    """Raise Unprocessable (422) listing every answer that does not fit the form."""
    issues: list[Issue] = []
    if not form.names_this_form(str(document.get("questionnaire"))):
        issues.append(
            Issue(
                "not-supported",
                f"this server takes answers to {form.canonical}",
                ("QuestionnaireResponse.questionnaire",),
            )
        )
    if document.get("status") not in ("completed", "amended"):
        issues.append(
            Issue(
                "value",
                "only a completed (or amended) response is taken",
                ("QuestionnaireResponse.status",),
            )
        )
    items = document.get("item", [])
    if not isinstance(items, list):
        items = []
    answers = _answer_map(items)
    _check_items(items, "", form, answers, issues)
    if issues:
        raise Unprocessable(*issues)


def _answer_map(items: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        for answer in item.get("answer", []) if isinstance(item.get("answer"), list) else []:
            if isinstance(answer, dict):
                found.setdefault(str(item.get("linkId")), []).extend(
                    v for k, v in answer.items() if k.startswith("value")
                )
        nested = item.get("item")
        if isinstance(nested, list):
            for key, values in _answer_map(nested).items():
                found.setdefault(key, []).extend(values)
    return found


def _check_items(
    items: list[Any], parent: str, form: ReferralForm, answers: dict, issues: list[Issue]
) -> None:
    seen: dict[str, int] = {}
    for item in items:
        link = item.get("linkId") if isinstance(item, dict) else None
        if not isinstance(link, str) or link not in form.items:
            issues.append(Issue("not-found", f"the form has no item {link!r}", (_where(link),)))
            continue
        seen[link] = seen.get(link, 0) + 1
        definition = form.items[link]
        if form.parents[link] != parent:
            issues.append(Issue("structure", f"{link} does not belong here", (_where(link),)))
            continue
        if seen[link] > 1 and not definition.get("repeats"):
            issues.append(Issue("structure", f"{link} is answered more than once", (_where(link),)))
        if not _enabled(definition, answers):
            issues.append(Issue("business-rule", f"{link} is not asked here", (_where(link),)))
            continue
        if definition.get("type") == "group":
            if item.get("answer"):
                issues.append(
                    Issue("structure", f"{link} is a group, not a question", (_where(link),))
                )
            children = item.get("item") if isinstance(item.get("item"), list) else []
            _check_required(definition, children, issues)
            _check_items(children, link, form, answers, issues)
        else:
            _check_answers(definition, item.get("answer"), issues)


def _where(link: Any) -> str:
    return f"QuestionnaireResponse.item.where(linkId='{link}')"


def _enabled(definition: dict[str, Any], answers: dict[str, list[Any]]) -> bool:
    conditions = definition.get("enableWhen") or []
    results = []
    for rule in conditions:
        expected = next((v for k, v in rule.items() if k.startswith("answer")), None)
        given = answers.get(rule["question"], [])
        results.append(expected in given if rule.get("operator") == "=" else expected not in given)
    if not results:
        return True
    return all(results) if definition.get("enableBehavior") == "all" else any(results)


def _check_required(definition: dict[str, Any], children: list[Any], issues: list[Issue]) -> None:
    given = {c.get("linkId") for c in children if isinstance(c, dict)}
    for child in definition.get("item", []):
        if child.get("required") and child["linkId"] not in given:
            issues.append(
                Issue(
                    "required",
                    f"{child['linkId']} is required in {definition['linkId']}",
                    (_where(child["linkId"]),),
                )
            )


def _check_answers(definition: dict[str, Any], answer: Any, issues: list[Issue]) -> None:
    link = definition["linkId"]
    if not isinstance(answer, list) or not answer:
        if definition.get("required"):
            issues.append(Issue("required", f"{link} needs an answer", (_where(link),)))
        return
    if len(answer) > 1 and not definition.get("repeats"):
        issues.append(Issue("structure", f"{link} takes one answer", (_where(link),)))
    for given in answer:
        problem = _answer_problem(definition, given)
        if problem is not None:
            issues.append(Issue(problem[0], f"{link}: {problem[1]}", (_where(link),)))


def _answer_problem(definition: dict[str, Any], given: Any) -> tuple[str, str] | None:
    kind = definition.get("type", "")
    values = (
        {k: v for k, v in given.items() if k.startswith("value")} if isinstance(given, dict) else {}
    )
    if len(values) != 1 or next(iter(values)) not in _ANSWER_KEYS.get(kind, ()):
        return "structure", f"a {kind} answer ({' or '.join(_ANSWER_KEYS.get(kind, ()))})"
    key, value = next(iter(values.items()))
    if kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "structure", "a number"
        if kind == "integer" and not isinstance(value, int):
            return "structure", "a whole number"
        low, high = _limit(definition, _MIN), _limit(definition, _MAX)
        if (low is not None and value < low) or (high is not None and value > high):
            return "value", f"{value} is outside {low}..{high} {_unit(definition)}".rstrip()
    elif kind == "boolean" and not isinstance(value, bool):
        return "structure", "true or false"
    elif kind in ("string", "text") or key == "valueString":
        if not isinstance(value, str) or not value.strip():
            return "value", "a non-empty text"
        if len(value) > int(definition.get("maxLength", 1000)):
            return "too-long", f"at most {definition.get('maxLength', 1000)} characters"
    elif kind == "date" and (not isinstance(value, str) or not valid_date(value)):
        return "value", "a date (YYYY-MM-DD)"
    elif key == "valueCoding" and not _offered(definition, value):
        return "code-invalid", "not one of the offered answers"
    return None


def valid_date(value: str) -> bool:
    try:
        return bool(_DATE.match(value)) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _limit(definition: dict[str, Any], url: str) -> float | None:
    for ext in definition.get("extension", []):
        if ext.get("url") == url:
            return next(v for k, v in ext.items() if k.startswith("value"))
    return None


def _unit(definition: dict[str, Any]) -> str:
    for ext in definition.get("extension", []):
        if ext.get("url", "").endswith("questionnaire-unit"):
            return str(ext["valueCoding"].get("display", ""))
    return ""


def _offered(definition: dict[str, Any], coding: Any) -> bool:
    if not isinstance(coding, dict):
        return False
    options = [o.get("valueCoding", {}) for o in definition.get("answerOption", [])]
    return any(
        o.get("system") == coding.get("system") and o.get("code") == coding.get("code")
        for o in options
    )
