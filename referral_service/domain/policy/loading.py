"""Loading the policy file: marshmallow checks the YAML's shape, code sets are normalized and
indexed once, and the result is a frozen Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from referral_service.domain.facts import (
    ICD10_CM,
    normalize_code,
)
from referral_service.domain.medication_policy import (
    medication_records,
    with_brand_names,
)
from referral_service.domain.policy.displays import CodeDisplays
from referral_service.domain.policy.indexes import CodeIndex, DrugIndex, expand_icd_range
from referral_service.domain.policy.model import (
    AcuteClass,
    Category,
    CodeSet,
    Contraindications,
    Criterion,
    DrugList,
    Policy,
    PolicyError,
    Protocol,
    RedFlag,
)
from referral_service.domain.policy.schema import PolicySchema
from referral_service.domain.referral_form import FormError, ReferralForm, load_form

DEFAULT_POLICY = Path(__file__).parents[1] / "policies" / "default.yaml"
# libyaml's safe loader when PyYAML has it: the same documents, parsed several times faster
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --- loading -----------------------------------------------------------------------------


def load_policy(path: str | None = None) -> Policy:
    """Load and validate a policy file; None loads the built-in default policy."""
    source = Path(path) if path else DEFAULT_POLICY
    try:
        raw = yaml.load(source.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"policy file {source}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {source}: (root): must be a mapping")
    try:
        data = PolicySchema().load(raw)
    except ValidationError as exc:
        key, message = _first_error(exc.messages)
        raise PolicyError(f"policy file {source}: {key}: {message}") from exc
    return _build_policy(data, _form(data, source))


def _form(data: dict[str, Any], source: Path) -> ReferralForm | None:
    spec = data.get("referral_form")
    if spec is None:
        return None
    try:
        return load_form(
            spec,
            source.parent,
            metrics={k: v for k, v in data["metrics"].items() if k != "system"},
            acute_classes=set(data["acute_classes"]),
            red_flags={flag["id"] for flag in data["red_flags"]},
            pregnancy_days=int(data["windows"]["pregnancy_test_days"]),
        )
    except FormError as exc:
        raise PolicyError(f"policy file {source}: {exc}") from exc


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


def _build_policy(data: dict[str, Any], form: ReferralForm | None = None) -> Policy:
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
        displays=CodeDisplays.build(data["displays"]),
        form=form,
    )
