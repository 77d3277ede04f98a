"""Medication records at the FHIR edge: MedicationStatement, MedicationRequest and
MedicationAdministration as MedicationFacts, with the Medication they reference, their dosage
and a request's dispense (criteria section 8 items 1-3)."""

from __future__ import annotations

from typing import Any, Protocol

from referral_service.domain.facts import Concept, DosageFact, MedicationFact
from referral_service.fhir.json_read import (
    as_dict,
    as_list,
    as_number,
    as_str,
    concept,
    parse_datetime,
)

# UCUM units of time (and their spelled-out forms) in days; a month and a year are UCUM's
# mean Julian ones.
_DAYS_PER_UNIT = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.4375,
    "a": 365.25,
    **dict.fromkeys(("second", "seconds"), 1 / 86400),
    **dict.fromkeys(("minute", "minutes"), 1 / 1440),
    **dict.fromkeys(("hour", "hours"), 1 / 24),
    **dict.fromkeys(("day", "days"), 1.0),
    **dict.fromkeys(("week", "weeks"), 7.0),
    **dict.fromkeys(("month", "months"), 30.4375),
    **dict.fromkeys(("year", "years"), 365.25),
}


class Library(Protocol):
    """The resources in hand (fhir.facts._Library)."""

    def resolve(self, ref: str | None) -> dict[str, Any] | None: ...

    def ref_of(self, res: dict[str, Any]) -> str: ...


def medication_fact(res: dict[str, Any], ref: str, library: Library) -> MedicationFact:
    period = as_dict(res.get("effectivePeriod"))
    reasons = [concept(r) for r in as_list(res.get("statusReason"))]
    if isinstance(res.get("statusReason"), dict):
        reasons.append(concept(res["statusReason"]))
    effective = res.get("effectiveDateTime") or res.get("occurenceDateTime")
    medication, medication_ref, form = _medication(res, ref, library)
    dispense = as_dict(res.get("dispenseRequest"))
    validity = as_dict(dispense.get("validityPeriod"))
    repeats = as_number(dispense.get("numberOfRepeatsAllowed"))
    dosages = as_list(res.get("dosageInstruction")) + as_list(res.get("dosage"))
    return MedicationFact(
        ref=ref,
        kind=res["resourceType"],
        medication=medication,
        status=as_str(res.get("status")),
        effective=parse_datetime(effective),
        period_start=parse_datetime(period.get("start")),
        period_end=parse_datetime(period.get("end")),
        status_reasons=tuple(
            r.text or (r.codes[0].display or r.codes[0].code if r.codes else "") or "stated"
            for r in reasons
        ),
        medication_ref=medication_ref,
        form=form,
        dosages=tuple(_dosage(as_dict(d)) for d in dosages if isinstance(d, dict)),
        validity_start=parse_datetime(validity.get("start")),
        validity_end=parse_datetime(validity.get("end")),
        supply_days=duration_days(dispense.get("expectedSupplyDuration")),
        repeats=int(repeats) if repeats is not None and repeats >= 0 else 0,
    )


def _medication(
    res: dict[str, Any], ref: str, library: Library
) -> tuple[Concept, str | None, Concept | None]:
    """The medication's concept and, when a Medication resource named it (section 8 item 2:
    its code, then its ingredient items), that resource's reference and dose form."""
    if "medicationCodeableConcept" in res:
        return concept(res["medicationCodeableConcept"]), None, None
    med = as_dict(res.get("medication"))
    if "concept" in med:
        return concept(med["concept"]), None, None
    reference = res.get("medicationReference")
    target = _reference(reference) or _reference(med)
    found = _own_contained(res, target)
    evidence = f"{ref}{target}" if found is not None else None
    if found is None:
        found = library.resolve(target)
        evidence = library.ref_of(found) if found is not None else None
    if found is not None and found.get("resourceType") == "Medication":
        form = concept(found["form"]) if isinstance(found.get("form"), dict) else None
        return _medication_resource(found, library), evidence, form
    return Concept((), as_str(as_dict(reference).get("display")) or ""), None, None


def _own_contained(res: dict[str, Any], ref: str | None) -> dict[str, Any] | None:
    """`#id` names a resource contained in the record itself (where EHRs put the Medication)."""
    if ref is None or not ref.startswith("#"):
        return None
    for inner in as_list(res.get("contained")):
        if isinstance(inner, dict) and as_str(inner.get("id")) == ref[1:]:
            return inner
    return None


def _medication_resource(medication: dict[str, Any], library: Library) -> Concept:
    named = [concept(medication.get("code"))]
    for ingredient in as_list(medication.get("ingredient")):
        ingredient = as_dict(ingredient)
        item = ingredient.get("itemCodeableConcept") or as_dict(ingredient.get("item")).get(
            "concept"
        )
        if item is not None:
            named.append(concept(item))
            continue
        found = library.resolve(
            _reference(ingredient.get("itemReference")) or _reference(ingredient.get("item"))
        )
        if found is not None and found.get("resourceType") in ("Substance", "Medication"):
            named.append(concept(found.get("code")))
    codes = tuple(code for c in named for code in c.codes)
    return Concept(codes, " / ".join(c.text for c in named if c.text))


def _reference(value: Any) -> str | None:
    value = as_dict(value)
    ref = value.get("reference")
    return as_str(ref) if not isinstance(ref, dict) else as_str(ref.get("reference"))


def _dosage(dosage: dict[str, Any]) -> DosageFact:
    timing = as_dict(dosage.get("timing"))
    repeat = as_dict(timing.get("repeat"))
    code = concept(timing.get("code")) if "code" in timing else None
    texts = [as_str(dosage.get("text")), as_str(dosage.get("patientInstruction"))]
    if code is not None:
        texts += [code.text, *(c.code for c in code.codes), *(c.display for c in code.codes)]
    period = as_number(repeat.get("period"))
    unit = _DAYS_PER_UNIT.get(as_str(repeat.get("periodUnit")) or "")
    as_needed = (
        dosage.get("asNeededBoolean") is True
        or dosage.get("asNeeded") is True
        or isinstance(dosage.get("asNeededCodeableConcept"), dict)
        or bool(as_list(dosage.get("asNeededFor")))
    )
    return DosageFact(
        texts=tuple(t for t in texts if t),
        period_days=period * unit if period is not None and unit is not None else None,
        frequency=as_number(repeat.get("frequency")),
        as_needed=as_needed,
        route=concept(dosage["route"]) if isinstance(dosage.get("route"), dict) else None,
    )


def duration_days(value: Any) -> float | None:
    """A Duration (UCUM code, else unit) in days."""
    value = as_dict(value)
    amount = as_number(value.get("value"))
    unit = as_str(value.get("code")) or as_str(value.get("unit")) or ""
    per = _DAYS_PER_UNIT.get(unit, _DAYS_PER_UNIT.get(unit.lower()))
    return amount * per if amount is not None and per is not None and amount >= 0 else None
