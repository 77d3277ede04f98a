"""The eligibility policy's model: frozen dataclasses the engine reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from referral_service.domain.medication_policy import (
    MedicationRecords,
)
from referral_service.domain.policy.displays import CodeDisplays

if TYPE_CHECKING:
    from referral_service.domain.policy.indexes import CodeIndex, DrugIndex
    from referral_service.domain.referral_form import ReferralForm


class PolicyError(ValueError):
    """The policy file is missing, unreadable or malformed; the message names the bad key."""


@dataclass(frozen=True, slots=True)
class CodeSet:
    icd10: frozenset[str] = frozenset()  # normalized family prefixes
    snomed: frozenset[str] = frozenset()
    characters: tuple[tuple[str, int, str], ...] = ()  # (category, 1-based position, character)
    who_icd10: frozenset[str] = frozenset()  # WHO categories (3 characters) or codes (4)
    bit: int = 0  # its bit in the policy's CodeIndex masks (0: no code, matches nothing)


@dataclass(frozen=True, slots=True)
class DrugList:
    """A set of drug ids from the policy's `drugs`, with their RxNorm codes and names."""

    ids: frozenset[str] = frozenset()
    rxnorm: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RedFlag:
    id: str
    finding: str
    codes: CodeSet
    acute: bool = False
    # ICD-10-CM codes the reason names in plain words: (normalized prefix, as written, words)
    named: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    codes: CodeSet


@dataclass(frozen=True, slots=True)
class Criterion:
    """One contraindication: kind is condition, history, pregnancy, medication, egfr,
    blood-pressure or allergy; the other fields are that kind's parameters."""

    kind: str
    label: str
    codes: CodeSet = CodeSet()
    drugs: DrugList = DrugList()
    older_than_days: int = 0
    at_least: float | None = None
    below: float | None = None
    systolic: float | None = None
    diastolic: float | None = None


@dataclass(frozen=True, slots=True)
class Contraindications:
    excluded: tuple[Criterion, ...] = ()
    relative: tuple[Criterion, ...] = ()


@dataclass(frozen=True, slots=True)
class Protocol:
    id: str
    drugs: tuple[str, ...]
    defining: str | None = None
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class AcuteClass:
    id: str
    days: int
    drugs: DrugList


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    metrics: dict[str, str]
    observations: dict[str, frozenset[str]]
    thresholds: dict[str, int | float]  # ints stay ints: they are printed in reasons
    windows: dict[str, int]
    active_statuses: frozenset[str]
    refuted_statuses: frozenset[str]
    medication_active_statuses: frozenset[str]
    red_flags: tuple[RedFlag, ...]
    red_flag_bits: int  # every red flag's bit: a fast "none at all"
    free_text_words: tuple[str, ...]
    ed_exception: dict[str, Any]
    code_sets: dict[str, CodeSet]
    categories: tuple[Category, ...]
    review_categories: frozenset[str]
    drugs: dict[str, DrugList]
    drug_index: DrugIndex
    preventive_classes: dict[str, DrugList]
    preventive_class_of: dict[str, str]  # drug id -> its preventive class
    acute_classes: tuple[AcuteClass, ...]
    acute_combined_days: int
    washout: DrugList
    cgrp_preventives: DrugList
    protocols: dict[str, Protocol]
    protocol_system: str
    protocol_by_category: dict[str, str]
    default_protocol: str
    pregnancy_status_protocol_drugs: frozenset[str]
    contraindications: dict[str, Contraindications]
    medication_records: MedicationRecords
    code_index: CodeIndex = field(compare=False, repr=False)  # the bits of every CodeSet above
    # the official names of codes, for people (never read by a rule)
    displays: CodeDisplays = field(default_factory=CodeDisplays, compare=False, repr=False)
    form: ReferralForm | None = field(default=None, compare=False, repr=False)
