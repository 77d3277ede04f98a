"""One FHIR resource, one fact: a Condition, an Observation, an AllergyIntolerance, an
Encounter or a DiagnosticReport as the domain reads it (wrong shapes read as absent)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from referral_service.domain.facts import (
    AllergyFact,
    Concept,
    ConditionFact,
    DiagnosticReportFact,
    EncounterFact,
    ObservationComponent,
    ObservationFact,
    PatientFacts,
)
from referral_service.fhir.json_read import as_date as _date
from referral_service.fhir.json_read import as_dict as _dict
from referral_service.fhir.json_read import as_list as _list
from referral_service.fhir.json_read import as_number as _number
from referral_service.fhir.json_read import as_str as _str
from referral_service.fhir.json_read import concept, parse_datetime

log = logging.getLogger(__name__)

Resolver = Callable[[str], dict | None]
_FAHRENHEIT = frozenset({"[degF]", "degF", "°F", "F", "deg F"})
_CELSIUS = frozenset({"Cel", "°C", "C", "deg C", "Celsius"})


def date_only(value: Any) -> date | None:
    """A FHIR date with no time (the day itself, in no zone); None for a dateTime."""
    text = _str(value)
    return _date(text) if text is not None and len(text) <= 10 else None


def _status(value: Any) -> str | None:
    """A status that is a plain code, or a CodeableConcept's first code."""
    if isinstance(value, str):
        return value.strip() or None
    codes = concept(value).codes
    return codes[0].code if codes else None


def notes_of(resource: dict[str, Any]) -> tuple[str, ...]:
    return tuple(t for n in _list(resource.get("note")) if (t := _str(_dict(n).get("text"))))


def reference_of(value: Any) -> str | None:
    """A Reference, or an R5 CodeableReference's reference."""
    value = _dict(value)
    ref = value.get("reference")
    return _str(ref) if not isinstance(ref, dict) else _str(ref.get("reference"))


def patient_facts(res: dict[str, Any], ref: str) -> PatientFacts:
    return PatientFacts(ref, _date(res.get("birthDate")), _str(res.get("gender")))


def _onset(res: dict[str, Any], birth: date | None) -> datetime | None:
    onset = parse_datetime(res.get("onsetDateTime"))
    if onset is None:
        onset = parse_datetime(_dict(res.get("onsetPeriod")).get("start"))
    age = _dict(res.get("onsetAge"))
    years = _number(age.get("value"))
    if onset is None and years is not None and birth is not None:
        unit = _str(age.get("code")) or _str(age.get("unit")) or "a"
        if unit in ("a", "yr", "year", "years"):
            start = datetime(birth.year, birth.month, birth.day, tzinfo=UTC)
            onset = start + timedelta(days=365.25 * years)
    return onset


def condition_fact(res: dict[str, Any], ref: str, birth: date | None) -> ConditionFact:
    return ConditionFact(
        ref=ref,
        code=concept(res.get("code")),
        clinical_status=_status(res.get("clinicalStatus")),
        verification_status=_status(res.get("verificationStatus")),
        onset=_onset(res, birth),
        recorded=parse_datetime(res.get("recordedDate")),
        notes=notes_of(res),
    )


def _quantity(res: dict[str, Any]) -> tuple[float | None, str]:
    """valueQuantity (temperatures converted to Cel) or valueInteger."""
    qty = _dict(res.get("valueQuantity"))
    value = _number(qty.get("value"))
    unit = _str(qty.get("code")) or _str(qty.get("unit")) or ""
    if value is None:
        value = _number(res.get("valueInteger"))
        return (value if value is not None else _number(res.get("valueDecimal"))), ""
    if unit in _FAHRENHEIT:
        return round((value - 32) * 5 / 9, 2), "Cel"
    return value, "Cel" if unit in _CELSIUS else unit


def _components(res: dict[str, Any]) -> tuple[ObservationComponent, ...]:
    found = []
    for comp in _list(res.get("component")):
        comp = _dict(comp)
        value, unit = _quantity(comp)
        code = comp.get("valueCodeableConcept")
        found.append(
            ObservationComponent(
                concept(comp.get("code")), value, unit, concept(code) if code else None
            )
        )
    return tuple(found)


def observation_fact(res: dict[str, Any], ref: str) -> ObservationFact:
    value, unit = _quantity(res)
    period = _dict(res.get("effectivePeriod"))
    start, end = parse_datetime(period.get("start")), parse_datetime(period.get("end"))
    code = res.get("valueCodeableConcept")
    return ObservationFact(
        ref=ref,
        code=concept(res.get("code")),
        status=_str(res.get("status")),
        value=value,
        unit=unit,
        value_code=concept(code) if code else None,
        value_text=_str(res.get("valueString")) or "",
        interpretation=tuple(c for i in _list(res.get("interpretation")) for c in concept(i).codes),
        components=_components(res),
        effective=parse_datetime(res.get("effectiveDateTime")) or end,
        period_start=start,
        period_end=end,
        issued=parse_datetime(res.get("issued")),
    )


def allergy_fact(res: dict[str, Any], ref: str) -> AllergyFact:
    substance = concept(res.get("code"))
    extra = [concept(_dict(r).get("substance")) for r in _list(res.get("reaction"))]
    codes = substance.codes + tuple(c for e in extra for c in e.codes)
    text = " / ".join(t for t in [substance.text, *(e.text for e in extra)] if t)
    return AllergyFact(
        ref,
        Concept(codes, text),
        _status(res.get("verificationStatus")),
        _status(res.get("clinicalStatus")),
    )


def encounter_fact(res: dict[str, Any], ref: str) -> EncounterFact:
    klass = res.get("class")
    if isinstance(klass, list):  # R5: a list of CodeableConcepts
        codes = [c for k in klass for c in concept(k).codes]
        return EncounterFact(ref, codes[0].code if codes else None)
    return EncounterFact(ref, _str(_dict(klass).get("code")))


def report_fact(res: dict[str, Any], ref: str) -> DiagnosticReportFact:
    categories = tuple(c for cat in _list(res.get("category")) for c in concept(cat).codes)
    when = (
        parse_datetime(res.get("effectiveDateTime"))
        or parse_datetime(_dict(res.get("effectivePeriod")).get("end"))
        or parse_datetime(res.get("issued"))
    )
    return DiagnosticReportFact(ref, categories, _str(res.get("status")), when)
