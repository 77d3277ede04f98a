"""The policy's reading of medication records (criteria section 8 items 1-3): brand names
that count as their ingredients, products that count for no rule (eye drops, creams, flushes),
the MedicationRequest statuses, and a drug that is a preventive only when dosed every other day
(rimegepant). Loaded from the policy file's `medication_records`; the engine only looks up."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from referral_service.domain.facts import RXNORM, SNOMED, Concept, DosageFact, MedicationFact


@dataclass(frozen=True, slots=True)
class MedicationRecords:
    brand_names: dict[str, tuple[str, ...]]  # brand (lower case) -> its ingredients' drug ids
    not_systemic: Words  # dose-form and route words
    not_systemic_routes: frozenset[str]  # SNOMED CT route codes
    request_ignored: frozenset[str]  # MedicationRequest statuses that count for nothing
    request_ended: frozenset[str]  # ... that end a trial (stopped, completed)
    dosed_preventives: dict[str, str]  # drug id -> the id it has when dosed every other day
    dosed_ids: frozenset[str]  # the ids on the right of dosed_preventives
    rxnorm_codes: frozenset[str]  # every RxNorm code of the policy's drugs
    every_other_day: Words
    interval_days: float
    as_needed: Words

    def counts_for_nothing(self, med: MedicationFact) -> bool:
        """8.2: an ophthalmic, otic, topical or flush product, by its names, its Medication's
        dose form or a dosage route."""
        not_systemic = self.not_systemic
        if not_systemic.in_concept(med.medication):
            return True
        if med.form is not None and not_systemic.in_concept(med.form):
            return True
        for dosage in med.dosages:
            route = dosage.route
            if route is not None and (
                not_systemic.in_concept(route)
                or any(
                    c.system == SNOMED and c.code in self.not_systemic_routes for c in route.codes
                )
            ):
                return True
        return False

    def substance_counts_for_nothing(self, substance: Concept) -> bool:
        return self.not_systemic.in_concept(substance)

    def dosed_every_other_day(self, med: MedicationFact) -> bool:
        """8.3 and 14(d): a dosage once every 2 days (timing period 2 d or 48 h, once a period)
        or the words (every other day, QOD, q48h, every 48 hours), and not as needed."""
        return any(self._every_other_day(d) for d in med.dosages)

    def _every_other_day(self, dosage: DosageFact) -> bool:
        text = " ".join(dosage.texts)
        if dosage.as_needed or self.as_needed.in_text(text):
            return False
        if dosage.period_days is not None:
            per_period = dosage.frequency or 1
            if abs(dosage.period_days / per_period - self.interval_days) < 1e-6:
                return True
        return self.every_other_day.in_text(text)

    def named_by_brand(self, concept: Concept) -> bool:
        """A brand name, and no RxNorm code of the policy's, named it."""
        for code in concept.codes:
            if code.system == RXNORM and code.code in self.rxnorm_codes:
                return False
        names = concept.names()
        return any([brand in name for brand in self.brand_names for name in names])

    def brands_in(self, concept: Concept) -> list[str]:
        """The brand names found in a concept's text and displays (for reasons)."""
        names = " ".join(concept.names())
        return [brand for brand in self.brand_names if brand in names]


class Words:
    """Words or phrases (case-insensitive, whitespace-normalized) found where a word starts, so
    that "otic" is not in "antibiotic" but "eye drop" is in "eye drops". A plain substring test
    of each phrase's first word comes first: this runs for every medication of every referral,
    and the regex only confirms the rare hit."""

    __slots__ = ("starts", "pattern")

    def __init__(self, phrases: Iterable[str]) -> None:
        normalized = sorted({" ".join(p.lower().split()) for p in phrases if p.strip()}, key=len)
        self.starts = tuple(dict.fromkeys(p.split()[0] for p in normalized))
        alternatives = "|".join(
            r"\s+".join(map(re.escape, p.split())) for p in reversed(normalized)
        )
        self.pattern = re.compile(rf"(?<![a-z0-9])(?:{alternatives})") if normalized else None

    def in_text(self, text: str) -> bool:
        if not text or self.pattern is None:
            return False
        low = text.lower()
        for start in self.starts:
            if start in low:
                return self.pattern.search(low) is not None
        return False

    def in_concept(self, concept: Concept) -> bool:
        """In the concept's text or a coding's display."""
        if self.in_text(concept.text):
            return True
        return any([self.in_text(code.display) for code in concept.codes])


class _NotSystemicSchema(Schema):
    words = fields.List(fields.String(), required=True)
    route_snomed = fields.List(
        fields.String(validate=validate.Regexp(r"^[0-9]+$")), load_default=list
    )


class _RequestStatusSchema(Schema):
    ignored = fields.List(fields.String(), required=True)
    ended = fields.List(fields.String(), required=True)


class _EveryOtherDaySchema(Schema):
    words = fields.List(fields.String(), required=True)
    interval_days = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False))


class MedicationRecordsSchema(Schema):
    """The `medication_records` section of the policy file."""

    brand_names = fields.Dict(
        required=True,
        keys=fields.String(),
        values=fields.List(fields.String(), validate=validate.Length(min=1)),
    )
    not_systemic = fields.Nested(_NotSystemicSchema, required=True)
    request_statuses = fields.Nested(_RequestStatusSchema, required=True)
    dosed_preventives = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    every_other_day = fields.Nested(_EveryOtherDaySchema, required=True)
    as_needed_words = fields.List(fields.String(), load_default=list)


def check_drug_names(section: dict[str, Any], drugs: dict[str, Any]) -> None:
    """Every drug id the section names is one of the policy's `drugs`."""
    named = [
        (f"medication_records.brand_names.{brand}", drug)
        for brand, ids in section["brand_names"].items()
        for drug in ids
    ]
    for drug, dosed in section["dosed_preventives"].items():
        named += [(f"medication_records.dosed_preventives.{drug}", d) for d in (drug, dosed)]
    for key, drug in named:
        if drug not in drugs:
            raise ValidationError(f"Unknown drug {drug!r} (not in drugs).", field_name=key)


def with_brand_names(drugs: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    """The policy's drugs with each brand name added to its ingredients' names, so that the
    drug index finds "Topamax" as topiramate."""
    merged = {drug: {**spec, "names": list(spec["names"])} for drug, spec in drugs.items()}
    for brand, ids in section["brand_names"].items():
        for drug in ids:
            merged[drug]["names"].append(brand.lower())
    return merged


def medication_records(section: dict[str, Any], drugs: dict[str, Any]) -> MedicationRecords:
    not_systemic = section["not_systemic"]
    statuses = section["request_statuses"]
    every_other_day = section["every_other_day"]
    return MedicationRecords(
        brand_names={b.lower(): tuple(ids) for b, ids in section["brand_names"].items()},
        not_systemic=Words(not_systemic["words"]),
        not_systemic_routes=frozenset(not_systemic["route_snomed"]),
        request_ignored=frozenset(statuses["ignored"]),
        request_ended=frozenset(statuses["ended"]),
        dosed_preventives=dict(section["dosed_preventives"]),
        dosed_ids=frozenset(section["dosed_preventives"].values()),
        rxnorm_codes=frozenset(code for spec in drugs.values() for code in spec["rxnorm"]),
        every_other_day=Words(every_other_day["words"]),
        interval_days=every_other_day["interval_days"],
        as_needed=Words(section["as_needed_words"]),
    )
