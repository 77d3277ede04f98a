"""The eligibility policy: a versioned YAML file loaded into frozen dataclasses.

Marshmallow checks the file's shape; code sets are normalized once here so that each
evaluation only does set look-ups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from referral_service.domain.facts import (
    ICD10_CM,
    RXNORM,
    SNOMED,
    WHO_ICD10,
    Code,
    Concept,
    normalize_code,
)
from referral_service.domain.medication_policy import (
    MedicationRecords,
    MedicationRecordsSchema,
    check_drug_names,
    medication_records,
    with_brand_names,
)

DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.yaml"


class PolicyError(ValueError):
    """The policy file is missing, unreadable or malformed; the message names the bad key."""


@dataclass(frozen=True, slots=True)
class CodeSet:
    icd10: frozenset[str] = frozenset()  # normalized family prefixes
    snomed: frozenset[str] = frozenset()
    characters: tuple[tuple[str, int, str], ...] = ()  # (category, 1-based position, character)
    who_icd10: frozenset[str] = frozenset()  # WHO categories (3 characters) or codes (4)
    bit: int = 0  # its bit in the policy's CodeIndex masks (0: no code, matches nothing)


class CodeIndex:
    """Every code set of a policy by its codes, so that one pass over a concept's codes gives
    the mask of the sets it matches: `codes.bit & mask(concept)` is true exactly when one of
    the concept's codes is in the set: an ICD-10-CM code under one of its family prefixes or
    with one of its (category, position, character) triples, one of its SNOMED codes, or a
    WHO ICD-10 code in one of its WHO categories or four-character codes."""

    def __init__(self) -> None:
        self.icd: dict[str, int] = {}  # family prefix -> bits of the sets holding it
        self.characters: dict[str, dict[tuple[int, str], int]] = {}  # category -> (pos, char)
        self.snomed: dict[str, int] = {}
        self.who: dict[str, int] = {}  # WHO category or four-character code -> bits
        self.bits: dict[frozenset[Any], int] = {}  # keys -> bit (equal sets share one)
        # Every start of a family prefix -> the bits of all prefixes that start it, so that a
        # code's ICD bits are those of its longest start found here (see mask)
        self.stems: dict[str, int] = {}
        # category -> ((1-based position >= 4, {character: bits}), ...)
        self.positions: dict[str, tuple[tuple[int, dict[str, int]], ...]] = {}

    def add(
        self,
        icd: frozenset[str],
        snomed: frozenset[str],
        chars: tuple[tuple[str, int, str], ...],
        who: frozenset[str] = frozenset(),
    ) -> int:
        """Index one code set; its bit."""
        keys = frozenset(
            {("i", p) for p in icd}
            | {("s", c) for c in snomed}
            | {("w", c) for c in who}
            | set(chars)
        )
        if not keys:
            return 0
        if keys in self.bits:
            return self.bits[keys]
        bit = self.bits[keys] = 1 << len(self.bits)
        for prefix in icd:
            self.icd[prefix] = self.icd.get(prefix, 0) | bit
        for code in snomed:
            self.snomed[code] = self.snomed.get(code, 0) | bit
        for code in who:
            self.who[code] = self.who.get(code, 0) | bit
        for category, position, char in chars:
            at = self.characters.setdefault(category, {})
            at[position, char] = at.get((position, char), 0) | bit
        self._index_stems()
        return bit

    def _index_stems(self) -> None:
        icd = self.icd
        self.stems = {
            prefix[:n]: _bits_of_starts(icd, prefix[:n])
            for prefix in icd
            for n in range(1, len(prefix) + 1)
        }
        by_position: dict[str, dict[int, dict[str, int]]] = {}
        for category, at in self.characters.items():
            for (position, char), bits in at.items():
                if position >= 4:  # (a code's first three characters are its category)
                    chars = by_position.setdefault(category, {}).setdefault(position, {})
                    chars[char] = bits
        self.positions = {
            category: tuple(sorted(at.items())) for category, at in by_position.items()
        }

    def matches(self, codes: CodeSet, code: Code) -> bool:
        """For one-off checks; the engine keeps each concept's mask."""
        return bool(codes.bit & self.mask(Concept((code,))))

    def mask(self, concept: Concept) -> int:
        mask = 0
        for code in concept.codes:
            system = code.system
            if system == ICD10_CM:
                value, stems = code.code, self.stems
                for n in range(1, len(value) + 1):  # a start not found starts no prefix either
                    bits = stems.get(value[:n])
                    if bits is None:
                        break
                    mask |= bits
                positions = self.positions.get(value[:3]) if len(value) > 3 else None
                if positions is not None:
                    for position, chars in positions:
                        if position <= len(value):
                            mask |= chars.get(value[position - 1], 0)
            elif system == SNOMED:
                mask |= self.snomed.get(code.code, 0)
            elif system == WHO_ICD10:  # (WHO subcodes mean other things: no longer prefixes)
                mask |= self.who.get(code.code[:3], 0) | self.who.get(code.code[:4], 0)
        return mask


def _bits_of_starts(icd: dict[str, int], text: str) -> int:
    """The bits of every family prefix that `text` starts with."""
    bits = 0
    for n in range(1, len(text) + 1):
        bits |= icd.get(text[:n], 0)
    return bits


@dataclass(frozen=True, slots=True)
class DrugList:
    """A set of drug ids from the policy's `drugs`, with their RxNorm codes and names."""

    ids: frozenset[str] = frozenset()
    rxnorm: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrugIndex:
    """Every drug of the policy: a medication concept -> the drug ids it names, by RxNorm code
    or by any ingredient name found in its text (overlaps included)."""

    by_rxnorm: dict[str, frozenset[str]]
    by_name: dict[str, frozenset[str]]  # a found name -> ids of it and of names inside it
    pattern: re.Pattern[str] | None  # the longest name at every position (overlapping)
    scan: re.Pattern[str] | None  # names one after another, each with the character after it
    run_on: dict[str, frozenset[str]]  # see _run_on

    @classmethod
    def build(cls, drugs: dict[str, DrugList]) -> DrugIndex:
        by_rxnorm: dict[str, set[str]] = {}
        owners: dict[str, set[str]] = {}
        for drug_id, drug in drugs.items():
            for code in drug.rxnorm:
                by_rxnorm.setdefault(code, set()).add(drug_id)
            for name in drug.names:
                owners.setdefault(name, set()).add(drug_id)
        by_name = {
            name: frozenset(i for other, ids in owners.items() if other in name for i in ids)
            for name in owners
        }
        pattern = scan = None
        if owners:
            # At each position the longest name that starts there, as a trie so that a position
            # fails on its first character instead of trying every name in turn.
            trie = _trie_pattern(owners)
            pattern = re.compile(f"(?=({trie}))")
            if "" not in owners:  # (an empty name matches everywhere: always scan every position)
                scan = re.compile(f"({trie})(?=(.?))", re.DOTALL)
        rxnorm = {k: frozenset(v) for k, v in by_rxnorm.items()}
        return cls(rxnorm, by_name, pattern, scan, _run_on(list(owners)))

    def drug_ids(self, concept: Concept) -> frozenset[str]:
        """RxNorm codes' ids first, then the names in the text, then in each display."""
        found: set[str] = set()
        by_rxnorm = self.by_rxnorm
        for code in concept.codes:
            if code.system == RXNORM and code.code in by_rxnorm:
                found |= by_rxnorm[code.code]
        if concept.text:
            self._add_named(concept.text.lower(), found)
        for code in concept.codes:
            if code.display:
                self._add_named(code.display.lower(), found)
        return frozenset(found)

    def _add_named(self, text: str, found: set[str]) -> None:
        """Add the ids of the drugs named in `text`."""
        by_name = self.by_name
        ids = by_name.get(text)
        if ids is not None:  # just a name: the longest at 0, and every other name is inside it
            found |= ids
            return
        for name in self._names_in(text):
            found |= by_name[name]

    def _names_in(self, text: str) -> list[str]:
        """The longest name at each position of `text` that starts one, as far as the drug
        ids go: one left-to-right pass finds each name and the character after it; a name
        begun inside a found one is inside it (by_name has its ids) unless it runs on past
        the end, which needs that next character to be one of run_on's. Only then (rarely)
        does the slower pass try every position."""
        if self.scan is None:
            return self.pattern.findall(text) if self.pattern is not None else []
        found = self.scan.findall(text)
        run_on = self.run_on
        names = []
        for name, after in found:
            if after in run_on[name]:
                return self.pattern.findall(text)  # type: ignore[union-attr]
            names.append(name)
        return names


def _run_on(names: list[str]) -> dict[str, frozenset[str]]:
    """For each name, the characters that can follow it in a text where another name begins
    inside it and runs on past its end ("naproxen" + "o" may be "...enoxaparin")."""
    return {
        name: frozenset(
            other[k]
            for other in names
            for k in range(1, min(len(name), len(other)))
            if name.endswith(other[:k])
        )
        for name in names
    }


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching the longest of `words` at a position: 'ab|abc|b' -> '(?:ab(?:c)?|b)'."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node(trie)


def _trie_node(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _trie_node(child) for char, child in node.items() if char]
    if not branches:
        return ""
    if "" in node:  # a word ends here: longer words first (greedy), else stop
        return "(?:" + "|".join(branches) + ")?"
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


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


# --- schemas ---------------------------------------------------------------------------

_ICD_ENTRY = re.compile(r"^[A-Za-z][0-9A-Za-z.]*(-[A-Za-z][0-9A-Za-z.]*)?$")
# A WHO ICD-10 category (or a range of them), or a four-character code (cc §8 item 14(b))
_WHO_ENTRY = re.compile(r"^[A-Za-z][0-9]{2}(-[A-Za-z][0-9]{2}|\.?[0-9A-Za-z])?$")


class _CodeSetFields(Schema):
    icd10 = fields.List(fields.String(validate=validate.Regexp(_ICD_ENTRY)), load_default=list)
    snomed = fields.List(fields.String(validate=validate.Regexp(r"^[0-9]+$")), load_default=list)
    who_icd10 = fields.List(fields.String(validate=validate.Regexp(_WHO_ENTRY)), load_default=list)
    icd10_characters = fields.List(
        fields.Tuple(
            (
                fields.String(validate=validate.Regexp(r"^[A-Za-z][0-9][0-9A-Za-z]$")),  # category
                fields.Integer(strict=True, validate=validate.Range(min=4, max=7)),
                fields.String(validate=validate.Length(equal=1)),
            )
        ),
        load_default=list,
    )


class _RedFlagSchema(_CodeSetFields):
    id = fields.String(required=True)
    finding = fields.String(required=True)
    acute = fields.Boolean(load_default=False)
    named = fields.Dict(
        keys=fields.String(validate=validate.Regexp(_ICD_ENTRY)),
        values=fields.String(),
        load_default=dict,
    )


class _CategorySchema(_CodeSetFields):
    id = fields.String(required=True)


_KINDS = ("condition", "history", "pregnancy", "medication", "egfr", "blood-pressure", "allergy")


class _CriterionSchema(_CodeSetFields):
    kind = fields.String(required=True, validate=validate.OneOf(_KINDS))
    label = fields.String(required=True)
    drugs = fields.List(fields.String(), load_default=list)
    older_than_days = fields.Integer(strict=True, load_default=0)
    at_least = fields.Float(load_default=None)
    below = fields.Float(load_default=None)
    systolic = fields.Float(load_default=None)
    diastolic = fields.Float(load_default=None)


class _ContraSchema(Schema):
    excluded = fields.List(fields.Nested(_CriterionSchema), load_default=list)
    relative = fields.List(fields.Nested(_CriterionSchema), load_default=list)


class _DrugSchema(Schema):
    rxnorm = fields.List(fields.String(), load_default=list)
    names = fields.List(fields.String(), load_default=list)


class _AcuteSchema(Schema):
    days = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    drugs = fields.List(fields.String(), required=True)


class _ProtocolSchema(Schema):
    drugs = fields.List(fields.String(), required=True)
    defining = fields.String(load_default=None)
    fallback = fields.String(load_default=None)


def _number_map(names: tuple[str, ...], floats: tuple[str, ...] = ()) -> type[Schema]:
    spec: dict[str, fields.Field] = {
        n: fields.Integer(strict=True, required=True, validate=validate.Range(min=0)) for n in names
    }
    spec.update({n: fields.Float(required=True) for n in floats})
    return Schema.from_dict(spec)


_THRESHOLDS = (
    "adult_age",
    "headache_days_chronic",
    "migraine_days_chronic",
    "debilitating_days_refractory",
    "failed_classes_refractory",
    "chronic_duration_days",
    "preventive_trial_days",
    "systolic_red_flag",
    "diastolic_red_flag",
    "dhe_systolic_limit",
    "dhe_diastolic_limit",
    "egfr_severe_below",
    "egfr_caution_below",
    "new_headache_age_over",
    "childbearing_age_min",
    "childbearing_age_max",
    "eptinezumab_min_age",
    "eptinezumab_migraine_days",
    "eptinezumab_failed_classes",
)
_WINDOWS = (
    "acute_event_days",
    "new_headache_days",
    "postpartum_days",
    "vitals_hours",
    "ed_imaging_days",
    "dhe_blood_pressure_days",
    "egfr_days",
    "pregnancy_status_days",
    "pregnancy_test_days",
    "triptan_washout_hours",
)


class _PolicySchema(Schema):
    version = fields.String(required=True, validate=validate.Length(min=1))
    metrics = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    observations = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), required=True
    )
    thresholds = fields.Nested(_number_map(_THRESHOLDS, ("fever_celsius",)), required=True)
    windows = fields.Nested(_number_map(_WINDOWS), required=True)
    condition_status = fields.Dict(
        keys=fields.String(validate=validate.OneOf(("active", "refuted"))),
        values=fields.List(fields.String()),
        required=True,
    )
    medication_active_statuses = fields.List(fields.String(), required=True)
    red_flags = fields.List(fields.Nested(_RedFlagSchema), required=True)
    free_text_words = fields.List(fields.String(), required=True)
    ed_exception = fields.Dict(required=True)
    code_sets = fields.Dict(
        keys=fields.String(), values=fields.Nested(_CodeSetFields), required=True
    )
    categories = fields.List(fields.Nested(_CategorySchema), required=True)
    review_categories = fields.List(fields.String(), required=True)
    drugs = fields.Dict(keys=fields.String(), values=fields.Nested(_DrugSchema), required=True)
    preventive_classes = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), required=True
    )
    acute_classes = fields.Dict(
        keys=fields.String(), values=fields.Nested(_AcuteSchema), required=True
    )
    acute_combined_days = fields.Integer(strict=True, required=True)
    washout_classes = fields.List(fields.String(), required=True)
    cgrp_preventives = fields.List(fields.String(), required=True)
    protocols = fields.Dict(
        keys=fields.String(), values=fields.Nested(_ProtocolSchema), required=True
    )
    protocol_system = fields.String(required=True)
    protocol_by_category = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    default_protocol = fields.String(required=True)
    pregnancy_status_protocol_drugs = fields.List(fields.String(), required=True)
    contraindications = fields.Dict(
        keys=fields.String(), values=fields.Nested(_ContraSchema), required=True
    )
    medication_records = fields.Nested(MedicationRecordsSchema, required=True)

    @validates_schema
    def _names_resolve(self, data: dict[str, Any], **_: Any) -> None:
        _check_references(data)


# --- loading -----------------------------------------------------------------------------


def load_policy(path: str | None = None) -> Policy:
    """Load and validate a policy file; None loads the built-in default policy."""
    source = Path(path) if path else DEFAULT_POLICY
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"policy file {source}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {source}: (root): must be a mapping")
    try:
        data = _PolicySchema().load(raw)
    except ValidationError as exc:
        key, message = _first_error(exc.messages)
        raise PolicyError(f"policy file {source}: {key}: {message}") from exc
    return _build_policy(data)


def _first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    """The first error as (dotted key path, message). Marshmallow's "value"/"key" level of a
    Dict field and its "_schema" level are not keys of the file, so they are left out."""
    if isinstance(messages, dict):
        key = sorted(messages, key=str)[0]
        name = str(key) if key not in ("_schema", "value", "key") else ""
        joined = f"{prefix}.{name}" if prefix and name else (prefix or name)
        return _first_error(messages[key], joined)
    if isinstance(messages, list) and messages:
        if all(isinstance(m, str) for m in messages):
            return prefix or "(root)", " ".join(messages)
        return _first_error(messages[0], prefix)
    return prefix or "(root)", str(messages)


def code_set(data: dict[str, Any], index: CodeIndex) -> CodeSet:
    """Build a CodeSet from a schema-loaded mapping (icd10 ranges expanded, dots dropped),
    indexed in `index`."""
    icd = frozenset(p for entry in data.get("icd10", ()) for p in expand_icd_range(entry))
    chars = tuple(
        (normalize_code(ICD10_CM, fam), pos, ch.upper())
        for fam, pos, ch in data.get("icd10_characters", ())
    )
    snomed = frozenset(data.get("snomed", ()))
    who = frozenset(p for entry in data.get("who_icd10", ()) for p in expand_icd_range(entry))
    bit = index.add(icd, snomed, chars, who)
    return CodeSet(icd10=icd, snomed=snomed, characters=chars, who_icd10=who, bit=bit)


def expand_icd_range(entry: str) -> list[str]:
    """'I20-I25' -> I20..I25; 'K92.0-K92.2' -> K920, K921, K922; 'G43.7' -> G437."""
    if "-" not in entry:
        return [normalize_code(ICD10_CM, entry)]
    low, high = (normalize_code(ICD10_CM, part) for part in entry.split("-", 1))
    stem = low[:-2] if low[-2:].isdigit() and high[-2:].isdigit() else low[:-1]
    width = len(low) - len(stem)
    if not high.startswith(stem) or len(high) != len(low):
        raise PolicyError(f"code range {entry}: ends must share a stem and a length")
    start, end = int(low[len(stem) :]), int(high[len(stem) :])
    return [f"{stem}{n:0{width}d}" for n in range(start, end + 1)]


_REQUIRED_CODE_SETS = (
    "headache_family",
    "nonspecific_headache",
    "migraine",
    "never_new",
    "pregnancy",
    "pregnancy_status_conditions",
    "periodic_syndromes",
    "postpartum",
    "malignancy",
    "immunosuppression",
)
_REQUIRED_OBSERVATIONS = (
    "temperature",
    "systolic",
    "diastolic",
    "blood_pressure_panel",
    "egfr",
    "pregnancy_status",
    "pregnant",
    "not_pregnant",
    "pregnancy_unknown",
    "hcg_urine",
    "hcg_serum",
    "test_positive",
    "test_negative",
    "test_positive_words",
    "test_negative_words",
    "test_positive_interpretation",
    "test_negative_interpretation",
)
_REQUIRED_METRICS = (
    "system",
    "headache_days",
    "migraine_days",
    "debilitating_days",
    "acute_medication_days",
)


def _fail(key: str, message: str) -> None:
    raise ValidationError(message, field_name=key)


def _check_required(data: dict[str, Any]) -> None:
    for section, names in (
        ("code_sets", _REQUIRED_CODE_SETS),
        ("observations", _REQUIRED_OBSERVATIONS),
        ("metrics", _REQUIRED_METRICS),
    ):
        for name in names:
            if name not in data[section]:
                _fail(f"{section}.{name}", "Missing data for required field.")


def _check_ranges(key: str, spec: dict[str, Any]) -> None:
    for field_name in ("icd10", "who_icd10"):
        for i, entry in enumerate(spec.get(field_name, ())):
            try:
                expand_icd_range(entry)
            except (PolicyError, ValueError) as exc:
                system = "ICD-10-CM" if field_name == "icd10" else "WHO ICD-10"
                _fail(f"{key}.{field_name}.{i}", f"Not a valid {system} range: {exc}")


def _check_drug_names(key: str, names: list[str], drugs: dict[str, Any]) -> None:
    for i, name in enumerate(names):
        if name not in drugs:
            _fail(f"{key}.{i}", f"Unknown drug {name!r} (not in drugs).")


def _check_references(data: dict[str, Any]) -> None:
    _check_required(data)
    for name, spec in data["code_sets"].items():
        _check_ranges(f"code_sets.{name}", spec)
    for i, spec in enumerate(data["red_flags"]):
        _check_ranges(f"red_flags.{i}", spec)
    drugs = data["drugs"]
    for name, members in data["preventive_classes"].items():
        _check_drug_names(f"preventive_classes.{name}", members, drugs)
    for name, spec in data["acute_classes"].items():
        _check_drug_names(f"acute_classes.{name}.drugs", spec["drugs"], drugs)
    _check_drug_names("cgrp_preventives", data["cgrp_preventives"], drugs)
    check_drug_names(data["medication_records"], drugs)
    for i, name in enumerate(data["washout_classes"]):
        if name not in data["acute_classes"]:
            _fail(f"washout_classes.{i}", f"Unknown acute class {name!r}.")
    for drug, spec in data["contraindications"].items():
        for kind in ("excluded", "relative"):
            for i, crit in enumerate(spec[kind]):
                key = f"contraindications.{drug}.{kind}.{i}"
                _check_ranges(key, crit)
                _check_drug_names(f"{key}.drugs", crit["drugs"], drugs)
    _check_protocols(data)


def _check_protocols(data: dict[str, Any]) -> None:
    protocols = data["protocols"]
    for name, spec in protocols.items():
        if spec["fallback"] is not None and spec["fallback"] not in protocols:
            _fail(f"protocols.{name}.fallback", f"Unknown protocol {spec['fallback']!r}.")
    for category, name in data["protocol_by_category"].items():
        if name not in protocols:
            _fail(f"protocol_by_category.{category}", f"Unknown protocol {name!r}.")
    if data["default_protocol"] not in protocols:
        _fail("default_protocol", f"Unknown protocol {data['default_protocol']!r}.")


def _drug_list(names: list[str], drugs: dict[str, Any]) -> DrugList:
    rx = frozenset(code for n in names for code in drugs[n]["rxnorm"])
    words = tuple(dict.fromkeys(w.lower() for n in names for w in drugs[n]["names"]))
    return DrugList(ids=frozenset(names), rxnorm=rx, names=words)


def _criterion(spec: dict[str, Any], drugs: dict[str, Any], index: CodeIndex) -> Criterion:
    return Criterion(
        kind=spec["kind"],
        label=spec["label"],
        codes=code_set(spec, index),
        drugs=_drug_list(spec["drugs"], drugs),
        older_than_days=spec["older_than_days"],
        at_least=spec["at_least"],
        below=spec["below"],
        systolic=spec["systolic"],
        diastolic=spec["diastolic"],
    )


def _contraindications(data: dict[str, Any], index: CodeIndex) -> dict[str, Contraindications]:
    drugs = data["drugs"]
    return {
        drug: Contraindications(
            excluded=tuple(_criterion(c, drugs, index) for c in spec["excluded"]),
            relative=tuple(_criterion(c, drugs, index) for c in spec["relative"]),
        )
        for drug, spec in data["contraindications"].items()
    }


def _named(named: dict[str, str]) -> tuple[tuple[str, str, str], ...]:
    return tuple((normalize_code(ICD10_CM, c), c, words) for c, words in named.items())


def _build_policy(data: dict[str, Any]) -> Policy:
    records = data["medication_records"]
    data = {**data, "drugs": with_brand_names(data["drugs"], records)}
    drugs = data["drugs"]
    acute = data["acute_classes"]
    every_drug = {name: _drug_list([name], drugs) for name in drugs}
    index = CodeIndex()
    red_flags = tuple(
        RedFlag(f["id"], f["finding"], code_set(f, index), f["acute"], _named(f["named"]))
        for f in data["red_flags"]
    )
    code_sets = {k: code_set(v, index) for k, v in data["code_sets"].items()}
    categories = tuple(Category(c["id"], code_set(c, index)) for c in data["categories"])
    contraindications = _contraindications(data, index)
    red_flag_bits = 0
    for flag in red_flags:
        red_flag_bits |= flag.codes.bit
    return Policy(
        version=data["version"],
        metrics=dict(data["metrics"]),
        observations={k: frozenset(v) for k, v in data["observations"].items()},
        thresholds=dict(data["thresholds"]),
        windows=dict(data["windows"]),
        active_statuses=frozenset(data["condition_status"].get("active", ())),
        refuted_statuses=frozenset(data["condition_status"].get("refuted", ())),
        medication_active_statuses=frozenset(data["medication_active_statuses"]),
        red_flags=red_flags,
        red_flag_bits=red_flag_bits,
        free_text_words=tuple(" ".join(w.lower().split()) for w in data["free_text_words"]),
        ed_exception=dict(data["ed_exception"]),
        code_sets=code_sets,
        categories=categories,
        review_categories=frozenset(data["review_categories"]),
        drugs=every_drug,
        drug_index=DrugIndex.build(every_drug),
        preventive_classes={k: _drug_list(v, drugs) for k, v in data["preventive_classes"].items()},
        preventive_class_of={
            drug: k for k, members in data["preventive_classes"].items() for drug in members
        },
        acute_classes=tuple(
            AcuteClass(k, v["days"], _drug_list(v["drugs"], drugs)) for k, v in acute.items()
        ),
        acute_combined_days=data["acute_combined_days"],
        washout=_drug_list([d for c in data["washout_classes"] for d in acute[c]["drugs"]], drugs),
        cgrp_preventives=_drug_list(data["cgrp_preventives"], drugs),
        protocols={
            k: Protocol(k, tuple(v["drugs"]), v["defining"], v["fallback"])
            for k, v in data["protocols"].items()
        },
        protocol_system=data["protocol_system"],
        protocol_by_category=dict(data["protocol_by_category"]),
        default_protocol=data["default_protocol"],
        pregnancy_status_protocol_drugs=frozenset(data["pregnancy_status_protocol_drugs"]),
        contraindications=contraindications,
        medication_records=medication_records(records, drugs),
        code_index=index,
    )
