"""The eligibility policy: a versioned YAML file (policies/default.yaml) loaded into frozen
dataclasses. model.py is what the engine reads, indexes.py the look-up structures compiled once
per policy, loading.py the file's schema, checks and build."""

from referral_service.domain.policy.indexes import CodeIndex, DrugIndex, expand_icd_range
from referral_service.domain.policy.loading import (
    DEFAULT_POLICY,
    code_set,
    load_policy,
)
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

__all__ = [
    "DEFAULT_POLICY",
    "AcuteClass",
    "Category",
    "CodeIndex",
    "CodeSet",
    "Contraindications",
    "Criterion",
    "DrugIndex",
    "DrugList",
    "Policy",
    "PolicyError",
    "Protocol",
    "RedFlag",
    "code_set",
    "expand_icd_range",
    "load_policy",
]
