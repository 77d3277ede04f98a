"""Use case: evaluate one referral document (a ServiceRequest, or a Bundle holding one)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from referral_service.domain.decision import Decision
from referral_service.domain.eligibility import evaluate
from referral_service.domain.facts import ReferralFacts
from referral_service.domain.policy import Policy
from referral_service.fhir.facts import Resolver, extract_facts
from referral_service.fhir.form_facts import facts_from_response
from referral_service.fhir.questionnaire_response import for_form


class UnreadableReferral(ValueError):
    """The document is not a ServiceRequest nor a Bundle holding exactly one."""


def evaluate_document(
    document: dict[str, Any],
    *,
    policy: Policy,
    resolver: Resolver | None = None,
    received_at: datetime | None = None,
    time_zone: tzinfo = UTC,
) -> Decision:
    """Decide one referral; `received_at` is "now" when the referral has no authoredOn;
    `time_zone` is the clinic's (ages are whole years on the date there)."""
    request, others = split_referral(document)
    facts = extract_facts(
        request,
        bundle_resources=others,
        resolver=resolver,
        received_at=received_at or datetime.now(UTC),
        time_zone=time_zone,
    )
    return evaluate(with_form_answers(facts, others, policy, received_at), policy)


def split_referral(document: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ServiceRequest and the other Bundle entries (each with its fullUrl)."""
    if not isinstance(document, dict):
        raise UnreadableReferral("a referral must be a JSON object (ServiceRequest or Bundle)")
    kind = document.get("resourceType")
    if kind == "ServiceRequest":
        return document, []
    if kind != "Bundle":
        raise UnreadableReferral(f"expected a ServiceRequest or a Bundle, got {kind!r}"[:120])
    entries = document.get("entry")
    if not isinstance(entries, list):
        raise UnreadableReferral("the Bundle has no entries")
    entries = [e for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    requests = [e for e in entries if e["resource"].get("resourceType") == "ServiceRequest"]
    if len(requests) != 1:
        raise UnreadableReferral(
            f"the Bundle must hold exactly one ServiceRequest, found {len(requests)}"
        )
    return requests[0]["resource"], [e for e in entries if e is not requests[0]]


def with_form_answers(
    facts: ReferralFacts, others: list[dict[str, Any]], policy: Policy, received_at: datetime | None
) -> ReferralFacts:
    """The facts plus those the referral form's answers give (each response its evidence)."""
    observations, medications, conditions = [], [], []
    for entry in others:
        resource = entry.get("resource")
        if (
            not isinstance(resource, dict)
            or resource.get("resourceType") != "QuestionnaireResponse"
        ):
            continue
        if not for_form(resource, policy.form) or resource.get("status") not in (
            "completed",
            "amended",
        ):
            continue
        ref = entry.get("fullUrl") or f"QuestionnaireResponse/{resource.get('id')}"
        found = facts_from_response(resource, ref, policy, received_at or facts.now)
        observations += found[0]
        medications += found[1]
        conditions += found[2]
    if not (observations or medications or conditions):
        return facts
    return replace(
        facts,
        observations=facts.observations + tuple(observations),
        medications=facts.medications + tuple(medications),
        conditions=facts.conditions + tuple(conditions),
    )
