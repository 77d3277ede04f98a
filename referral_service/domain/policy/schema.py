"""The policy file's shape, checked by marshmallow before anything is built from it, and
the cross-references inside it (drug names, protocols, code ranges)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from referral_service.domain.medication_policy import MedicationRecordsSchema, check_drug_names
from referral_service.domain.policy.indexes import expand_icd_range
from referral_service.domain.policy.model import PolicyError

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


def _names(code: str) -> fields.Dict:
    """{code: official display}: keys in the system's own syntax, displays non-empty strings."""
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(code)),
        values=fields.String(validate=validate.Length(min=1, max=300)),
        load_default=dict,
    )


class _DisplaysSchema(Schema):
    """Official names of codes (optional), for the console and staff API; no rule reads them."""

    icd10 = _names(r"^[A-Za-z][0-9][0-9A-Za-z](\.?[0-9A-Za-z]{1,4})?$")
    snomed = _names(r"^[0-9]{6,18}$")
    loinc = _names(r"^[0-9]{1,7}-[0-9]$")
    rxnorm = _names(r"^[0-9]{1,9}$")


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


_FACTS = (
    "metric",
    "metric-months",
    "acute-days",
    "preventive-drug",
    "preventive-months",
    "preventive-outcome",
    "pregnancy-asked",
    "pregnancy-status",
    "pregnancy-status-date",
    "red-flag",
)


class _ExtractionSchema(Schema):
    fact = fields.String(required=True, validate=validate.OneOf(_FACTS))
    metric = fields.String()
    over_months = fields.Integer(strict=True, validate=validate.Range(min=1, max=24))
    acute_class = fields.String()
    red_flag = fields.String()


class _ReferralFormSchema(Schema):
    questionnaire = fields.String(required=True, validate=validate.Regexp(r"^[\w.-]+\.json$"))
    extraction = fields.Dict(
        keys=fields.String(), values=fields.Nested(_ExtractionSchema), required=True
    )


class PolicySchema(Schema):
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
    displays = fields.Nested(_DisplaysSchema, load_default=lambda: _DisplaysSchema().load({}))
    referral_form = fields.Nested(_ReferralFormSchema, load_default=None)

    @validates_schema
    def _names_resolve(self, data: dict[str, Any], **_: Any) -> None:
        _check_references(data)


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
