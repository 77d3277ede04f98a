"""The referral on the FHIR edge: validate an inbound ServiceRequest and read the fields the
service stores and searches on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referral_service.fhir.facts import parse_datetime
from referral_service.fhir.outcome import Unprocessable
from referral_service.fhir.validation import expect_resource_type, subject_issues, validate_resource


@dataclass(frozen=True)
class ReferralFields:
    status: str
    intent: str
    priority: str | None
    patient_ref: str | None
    authored_on: datetime | None


def validate_referral(document: dict[str, Any], supporting: list[dict[str, Any]]) -> None:
    """Raise Unreadable (wrong type) or Unprocessable (invalid) with every issue found."""
    expect_resource_type(document, "ServiceRequest")
    structural = validate_resource(document)
    if structural:
        # The business checks below read the structure; they only run on a well-formed one.
        raise Unprocessable(*structural)
    # An identifier without a system is valid FHIR (several HL7 examples have one); it just
    # cannot key idempotency, so business_identifiers() ignores it.
    issues = subject_issues(document, _patient_refs(document, supporting))
    if issues:
        raise Unprocessable(*issues)


def _patient_refs(document: dict[str, Any], supporting: list[dict[str, Any]]) -> set[str]:
    refs = {
        f"#{item.get('id')}"
        for item in document.get("contained") or []
        if isinstance(item, dict) and item.get("resourceType") == "Patient"
    }
    refs.update(
        f"Patient/{item.get('id')}" for item in supporting if item.get("resourceType") == "Patient"
    )
    return refs


def business_identifiers(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (identifier["system"], identifier["value"])
        for identifier in document.get("identifier") or []
        if identifier.get("system") and identifier.get("value")
    ]


def read_fields(document: dict[str, Any]) -> ReferralFields:
    subject = document.get("subject") or {}
    return ReferralFields(
        status=document["status"],
        intent=document["intent"],
        priority=document.get("priority"),
        patient_ref=subject.get("reference"),
        authored_on=parse_datetime(document.get("authoredOn")),
    )


def parse_identifier_query(value: str) -> tuple[str | None, str]:
    """`system|value`, `|value` or `value` (FHIR token search)."""
    if "|" in value:
        system, _, code = value.partition("|")
        return (system or None), code
    return None, value


def require_identifier_query(value: str) -> tuple[str, str]:
    system, code = parse_identifier_query(value)
    if not system or not code:
        raise Unprocessable.single(
            "invalid", "If-None-Exist must be identifier=system|value", "If-None-Exist"
        )
    return system, code
