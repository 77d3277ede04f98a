"""Answers to the clinic's referral form, for tests: a QuestionnaireResponse from numbers."""

from __future__ import annotations

from typing import Any

FORM_URL = "https://referral-service.dev/Questionnaire/headache-infusion-referral"
FORM = f"{FORM_URL}|2026.12.1"
SNOMED = "http://snomed.info/sct"
OUTCOMES = "https://referral-service.dev/referral-form-items"


def answer(link_id: str, value: Any) -> dict[str, Any]:
    key = {bool: "valueBoolean", int: "valueInteger", float: "valueDecimal", str: "valueString"}
    if isinstance(value, dict):
        return {"linkId": link_id, "answer": [{"valueCoding": value}]}
    return {"linkId": link_id, "answer": [{key[type(value)]: value}]}


def group(link_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "item": list(items)}


def preventive(drug: str, months: float, outcome: str) -> dict[str, Any]:
    return group(
        "preventive",
        answer("preventive-drug", drug),
        answer("preventive-months", float(months)),
        answer("preventive-outcome", {"system": OUTCOMES, "code": outcome}),
    )


def response(*items: dict[str, Any], authored: str = "2026-11-23T08:00:00Z", **extra: Any) -> dict:
    document = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": FORM,
        "status": "completed",
        "authored": authored,
        "item": list(items),
    }
    document.update(extra)
    return document


def frequency(
    headache: int | None = None,
    migraine: int | None = None,
    months: int = 3,
    debilitating: int | None = None,
) -> dict[str, Any]:
    parts = [answer("headache-days-per-month", headache)] if headache is not None else []
    if migraine is not None:
        parts.append(answer("migraine-days-per-month", migraine))
    if debilitating is not None:
        parts.append(answer("debilitating-days-per-month", debilitating))
    parts.append(answer("months-this-frequent", months))
    return group("frequency", *parts)


def pregnancy(code: str = "60001007", checked: str = "2026-11-22") -> dict[str, Any]:
    return group(
        "pregnancy",
        answer("could-be-pregnant", True),
        answer("pregnancy-status", {"system": SNOMED, "code": code}),
        {"linkId": "pregnancy-status-date", "answer": [{"valueDate": checked}]},
    )
