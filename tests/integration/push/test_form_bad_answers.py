"""Answers that do not fit the clinic's form: a 422 OperationOutcome naming the item by linkId
(issue.expression), the right issue code, and nothing stored. Over HTTP, on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.form_answers import (
    FORM_URL,
    SNOMED,
    answer,
    frequency,
    group,
    preventive,
    response,
)
from tests.support.referrals import FHIR_JSON

SUBJECT = {"reference": "Patient/p-1"}


def _qr(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return response(*items, subject=SUBJECT, **extra)


def _preventive_without(link_id: str) -> dict[str, Any]:
    whole = preventive("topiramate", 3, "side-effects")
    return {**whole, "item": [i for i in whole["item"] if i["linkId"] != link_id]}


CASES = [
    # (name, document, status, issue code, linkId named or None)
    (
        "unknown linkId",
        _qr(group("frequency", answer("cluster-days", 3))),
        422,
        "not-found",
        "cluster-days",
    ),
    ("over the maximum", _qr(frequency(45, 12)), 422, "value", "headache-days-per-month"),
    ("below the minimum", _qr(frequency(-1, 0)), 422, "value", "headache-days-per-month"),
    (
        "months over the maximum",
        _qr(frequency(20, 12, months=601)),
        422,
        "value",
        "months-this-frequent",
    ),
    (
        "a fraction for a whole number",
        _qr(
            group(
                "frequency",
                {"linkId": "migraine-days-per-month", "answer": [{"valueDecimal": 12.5}]},
            )
        ),
        422,
        "structure",
        "migraine-days-per-month",
    ),
    (
        "text for a number",
        _qr(
            group(
                "frequency",
                {"linkId": "migraine-days-per-month", "answer": [{"valueString": "12"}]},
            )
        ),
        422,
        "structure",
        "migraine-days-per-month",
    ),
    (
        "text for yes/no",
        _qr(group("red-flags", {"linkId": "red-flag-seizure", "answer": [{"valueString": "no"}]})),
        422,
        "structure",
        "red-flag-seizure",
    ),
    (
        "an answer not offered",
        _qr(
            group(
                "pregnancy",
                answer("could-be-pregnant", True),
                answer("pregnancy-status", {"system": SNOMED, "code": "123456"}),
            )
        ),
        422,
        "code-invalid",
        "pregnancy-status",
    ),
    (
        "a preventive without its drug",
        _qr(_preventive_without("preventive-drug")),
        422,
        "required",
        "preventive-drug",
    ),
    (
        "a preventive without how it ended",
        _qr(_preventive_without("preventive-outcome")),
        422,
        "required",
        "preventive-outcome",
    ),
    (
        "an empty drug name",
        _qr(preventive("  ", 3, "side-effects")),
        422,
        "value",
        "preventive-drug",
    ),
    (
        "a question not asked (enableWhen)",
        _qr(
            group(
                "pregnancy",
                answer("could-be-pregnant", False),
                answer("pregnancy-status", {"system": SNOMED, "code": "60001007"}),
            )
        ),
        422,
        "business-rule",
        "pregnancy-status",
    ),
    (
        "an item outside its group",
        _qr(answer("headache-days-per-month", 20)),
        422,
        "structure",
        "headache-days-per-month",
    ),
    (
        "two answers to a one-answer question",
        _qr(
            group(
                "frequency",
                {
                    "linkId": "migraine-days-per-month",
                    "answer": [{"valueInteger": 3}, {"valueInteger": 4}],
                },
            )
        ),
        422,
        "structure",
        "migraine-days-per-month",
    ),
    (
        "a callback name too long",
        _qr(group("callback", answer("callback-name", "x" * 121))),
        422,
        "too-long",
        "callback-name",
    ),
    (
        "an impossible date",
        _qr(
            group(
                "pregnancy",
                answer("could-be-pregnant", True),
                {"linkId": "pregnancy-status-date", "answer": [{"valueDate": "2026-02-30"}]},
            )
        ),
        422,
        "value",
        None,
    ),  # refused by FHIR's own date type first: the element's path is named
    (
        "a group answered like a question",
        _qr({"linkId": "frequency", "answer": [{"valueInteger": 3}]}),
        422,
        "structure",
        "frequency",
    ),
    ("an unfinished response", _qr(frequency(20, 12), status="in-progress"), 422, "value", None),
    (
        "another version of the form",
        _qr(frequency(20, 12), questionnaire=f"{FORM_URL}|1999.1"),
        422,
        "not-supported",
        None,
    ),
    (
        "a question repeated outside a repeating group",
        _qr(
            group(
                "frequency",
                answer("migraine-days-per-month", 3),
                answer("migraine-days-per-month", 4),
            )
        ),
        422,
        "structure",
        "migraine-days-per-month",
    ),
]


@pytest.mark.parametrize(
    ("name", "document", "status", "code", "link_id"), CASES, ids=[c[0] for c in CASES]
)
def test_a_bad_answer_is_refused_naming_the_item(
    as_sender, name: str, document: dict, status: int, code: str, link_id: str | None
) -> None:
    send = as_sender("er-a")
    got, outcome = send(
        "POST", "/fhir/QuestionnaireResponse", document, {"Content-Type": FHIR_JSON}
    )
    assert got == status, outcome
    assert outcome["resourceType"] == "OperationOutcome"
    issue = next(i for i in outcome["issue"] if i["code"] == code)
    if link_id is not None:
        assert issue["expression"] == [f"QuestionnaireResponse.item.where(linkId='{link_id}')"]
    assert send("GET", "/fhir/QuestionnaireResponse", None, {})[1]["total"] == 0


def test_there_are_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15 and len({c[3] for c in CASES}) >= 7


def test_an_answer_to_another_questionnaire_is_stored_unread(as_sender) -> None:
    send = as_sender("er-a")
    other = _qr(frequency(45, 12), questionnaire="https://elsewhere.example/Questionnaire/intake")
    got, _ = send("POST", "/fhir/QuestionnaireResponse", other, {"Content-Type": FHIR_JSON})
    assert got == 201
