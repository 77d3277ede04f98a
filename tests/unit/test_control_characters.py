"""The control-character guard's OperationOutcome names where without repeating the character
(found by the mutation property: a resourceType of "\x1f" was echoed in the issue's expression,
and any client parsing the answer as FHIR rejected it)."""

from __future__ import annotations

import pytest

from referral_service.fhir.control_characters import forbid_in_json, string_control_character
from referral_service.fhir.outcome import Unreadable


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"resourceType": "\x1f", "status": "active"}, "$.resourceType"),
        ({"resourceType": "Service\x08Request"}, "$.resourceType"),
        (
            {"resourceType": "ServiceRequest", "note": [{"text": "a\x00b"}]},
            "ServiceRequest.note[0].text",
        ),
        ({"resourceType": "ServiceRequest", "ca\x07t": 1}, "ServiceRequest"),
    ],
)
def test_the_issue_names_where_without_the_character(document: dict, where: str) -> None:
    with pytest.raises(Unreadable) as refused:
        forbid_in_json(document)
    (issue,) = refused.value.issues
    assert issue.expression == (where,)
    assert string_control_character(issue.diagnostics) is None
    assert all(string_control_character(path) is None for path in issue.expression)
