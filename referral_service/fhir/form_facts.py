"""Answers to the clinic's referral form as the facts the engine reads, by the policy's
extraction map; each fact's evidence is the response (checked first by
fhir/questionnaire_response.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from referral_service.domain.facts import (
    ICD10_CM,
    LOINC,
    Code,
    Concept,
    ConditionFact,
    MedicationFact,
    ObservationComponent,
    ObservationFact,
)
from referral_service.domain.policy import Policy
from referral_service.domain.referral_form import FAILED_OUTCOMES, ReferralForm
from referral_service.fhir.json_read import parse_datetime
from referral_service.fhir.questionnaire_response import valid_date

_MONTH_DAYS = 30  # a month of the form's "per month" counts, as the criteria count windows


def facts_from_response(
    document: dict[str, Any], ref: str, policy: Policy, received_at: datetime
) -> tuple[list[ObservationFact], list[MedicationFact], list[ConditionFact]]:
    """The facts a (checked) response gives, by the policy's extraction map."""
    form = policy.form
    assert form is not None
    when = _authored(document, received_at)
    groups = list(_answers(document.get("item", []), form))
    flat: dict[str, Any] = {}
    for link, value, _ in groups:
        flat.setdefault(link, value)
    observations = _metrics(form, flat, ref, when, policy)
    observations += _pregnancy(form, flat, ref, when)
    medications = _preventives(form, document.get("item", []), ref, when)
    conditions = _red_flags(form, flat, ref, when, policy)
    return observations, medications, conditions


def _authored(document: dict[str, Any], received_at: datetime) -> datetime:
    given = document.get("authored")
    parsed = parse_datetime(given) if isinstance(given, str) else None
    return parsed if parsed is not None else received_at


def _answers(items: Any, form: ReferralForm, group: str = ""):  # type: ignore[no-untyped-def]
    for item in items if isinstance(items, list) else []:
        link = item.get("linkId")
        for answer in item.get("answer", []) or []:
            for key, value in answer.items():
                if key.startswith("value"):
                    yield link, value, group
        yield from _answers(item.get("item"), form, link)


def _metrics(
    form: ReferralForm, flat: dict[str, Any], ref: str, when: datetime, policy: Policy
) -> list[ObservationFact]:
    system = policy.metrics["system"]
    months = next(
        (
            flat[link]
            for link, r in form.extraction.items()
            if r.fact == "metric-months" and link in flat
        ),
        None,
    )
    found: dict[str, ObservationFact] = {}
    for link, rule in form.extraction.items():
        if link not in flat:
            continue
        if rule.fact == "metric" and rule.metric and rule.metric not in found:
            over = rule.over_months if rule.over_months > 1 else (months or 1)
            code = policy.metrics[rule.metric]
            found[rule.metric] = ObservationFact(
                ref,
                Concept((Code(system, code),)),
                status="final",
                value=flat[link] / rule.over_months,
                unit="d",
                effective=when,
                period_start=when - timedelta(days=_MONTH_DAYS * over),
                period_end=when,
            )
    acute = [
        ObservationComponent(Concept((Code(system, r.acute_class or ""),)), float(flat[link]))
        for link, r in form.extraction.items()
        if r.fact == "acute-days" and link in flat
    ]
    if acute:
        found["acute"] = ObservationFact(
            ref,
            Concept((Code(system, policy.metrics["acute_medication_days"]),)),
            status="final",
            value=sum(c.value or 0 for c in acute),
            components=tuple(acute),
            effective=when,
            period_start=when - timedelta(days=_MONTH_DAYS),
            period_end=when,
        )
    return list(found.values())


def _pregnancy(form: ReferralForm, flat: dict[str, Any], ref: str, when: datetime) -> list:
    status = _first(form, flat, "pregnancy-status")
    if not isinstance(status, dict):
        return []
    checked = _first(form, flat, "pregnancy-status-date")
    effective = when
    if isinstance(checked, str) and valid_date(checked):
        effective = datetime.combine(date.fromisoformat(checked), datetime.min.time(), UTC)
    answer = Code(
        str(status.get("system")), str(status.get("code")), str(status.get("display", ""))
    )
    return [
        ObservationFact(
            ref,
            Concept((Code(LOINC, "82810-3"),)),
            status="final",
            value_code=Concept((answer,)),
            effective=effective,
        )
    ]


def _first(form: ReferralForm, flat: dict[str, Any], fact: str) -> Any:
    return next((flat[k] for k, r in form.extraction.items() if r.fact == fact and k in flat), None)


def _preventives(form: ReferralForm, items: Any, ref: str, when: datetime) -> list[MedicationFact]:
    """One MedicationStatement-like fact per answered preventive group."""
    roles = {k: r.fact for k, r in form.extraction.items() if r.fact.startswith("preventive-")}
    found = []
    for group in _groups_with(items, set(roles)):
        answers = {roles[link]: value for link, value, _ in _answers(group, form) if link in roles}
        drug = answers.get("preventive-drug")
        if drug is None:
            continue
        name = drug if isinstance(drug, str) else str(drug.get("display") or drug.get("code"))
        outcome = answers.get("preventive-outcome") or {}
        code = outcome.get("code") if isinstance(outcome, dict) else None
        months = answers.get("preventive-months")
        start = when - timedelta(days=_MONTH_DAYS * float(months)) if months is not None else None
        ended = code != "still-taking"
        found.append(
            MedicationFact(
                ref,
                "MedicationStatement",
                Concept((), name),
                status="stopped" if ended else "active",
                effective=when,
                period_start=start,
                period_end=when if ended and start is not None else None,
                status_reasons=(FAILED_OUTCOMES[code],) if code in FAILED_OUTCOMES else (),
            )
        )
    return found


def _groups_with(items: Any, links: set[str]):  # type: ignore[no-untyped-def]
    """The lists of sibling items holding one of `links` (one repeat of a group each)."""
    if not isinstance(items, list):
        return
    if any(isinstance(i, dict) and i.get("linkId") in links for i in items):
        yield items
        return
    for item in items:
        if isinstance(item, dict):
            yield from _groups_with(item.get("item"), links)


def _red_flags(
    form: ReferralForm, flat: dict[str, Any], ref: str, when: datetime, policy: Policy
) -> list[ConditionFact]:
    """A "yes" to a red-flag question is that finding, recorded when answered."""
    flags = {flag.id: flag for flag in policy.red_flags}
    found = []
    for link, rule in form.extraction.items():
        if rule.fact != "red-flag" or flat.get(link) is not True or rule.red_flag not in flags:
            continue
        flag = flags[rule.red_flag]
        code = sorted(flag.codes.icd10)[0] if flag.codes.icd10 else ""
        found.append(
            ConditionFact(
                ref,
                Concept((Code(ICD10_CM, code),), flag.finding),
                clinical_status="active",
                onset=when,
                recorded=when,
            )
        )
    return found
