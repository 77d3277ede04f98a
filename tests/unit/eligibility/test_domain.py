"""Pure-domain tests: facts built directly, no FHIR; and the domain's import hygiene."""

from __future__ import annotations

import ast
import pkgutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import referral_service.domain as domain_pkg
from referral_service.domain.eligibility import evaluate
from referral_service.domain.eligibility.logic import (
    MET,
    NOT_MET,
    UNKNOWN,
    Finding,
    all_of,
    any_of,
)
from referral_service.domain.facts import (
    ICD10_CM,
    SNOMED,
    WHO_ICD10,
    Code,
    Concept,
    ConditionFact,
    ObservationFact,
    PatientFacts,
    ReferralFacts,
)

from .builders import POLICY

NOW = datetime(2026, 1, 15, 9, tzinfo=UTC)
METRICS = POLICY.metrics["system"]


def _metric(name: str, value: int, ref: str) -> ObservationFact:
    return ObservationFact(
        ref,
        Concept((Code(METRICS, POLICY.metrics[name]),)),
        "final",
        float(value),
        "",
        None,
        (),
        NOW,
        NOW - timedelta(days=100),
        NOW,
    )


def _facts(*codes: Code, **kw: object) -> ReferralFacts:
    conditions = tuple(
        ConditionFact(f"Condition/{i}", Concept((c,)), "active", onset=NOW - timedelta(days=800))
        for i, c in enumerate(codes)
    )
    base = dict(
        referral="r",
        ref="ServiceRequest/r",
        now=NOW,
        patient=PatientFacts("Patient/p", date(1970, 5, 5), "male"),
        conditions=conditions,
        observations=(
            _metric("headache_days", 18, "Observation/h"),
            _metric("migraine_days", 10, "Observation/m"),
        ),
    )
    base.update(kw)
    return ReferralFacts(**base)  # type: ignore[arg-type]


def test_pure_facts_chronic_migraine_is_eligible() -> None:
    decision = evaluate(_facts(Code.of(ICD10_CM, "G43.709")), POLICY)
    assert (decision.decision, decision.category, decision.protocol) == (
        "eligible",
        "chronic-migraine",
        "standard-infusion",
    )


def test_pure_facts_snomed_is_exact_not_a_prefix() -> None:
    decision = evaluate(_facts(Code.of(SNOMED, "9566000")), POLICY)  # not thunderclap 95660002
    assert decision.decision == "ineligible"  # and no headache code at all


def test_code_normalization() -> None:
    assert Code.of(ICD10_CM, " g44.53 ").code == "G4453"
    assert Code.of(SNOMED, "95660002").code == "95660002"


def test_three_valued_and() -> None:
    assert all_of(Finding(NOT_MET), Finding(UNKNOWN)).outcome == NOT_MET
    assert all_of(Finding(MET), Finding(UNKNOWN, missing=("x",))).missing == ("x",)
    assert all_of(Finding(MET), Finding(MET)).outcome == MET


def test_three_valued_or() -> None:
    assert any_of(Finding(MET), Finding(UNKNOWN)).outcome == MET
    assert any_of(Finding(NOT_MET), Finding(UNKNOWN)).outcome == UNKNOWN
    assert any_of(Finding(NOT_MET), Finding(NOT_MET)).outcome == NOT_MET


def test_refractory_by_the_intractable_families_status_by_sixth_character() -> None:
    matches = POLICY.code_index.matches
    refractory = POLICY.categories[1].codes
    assert matches(refractory, Code.of(ICD10_CM, "G43.719"))
    assert matches(refractory, Code.of(ICD10_CM, "G43.E19"))
    assert matches(refractory, Code.of(ICD10_CM, "G43.839"))  # menstrual, intractable (cc §8.8)
    assert not matches(refractory, Code.of(ICD10_CM, "G43.709"))
    assert not matches(refractory, Code.of(ICD10_CM, "G43.A1"))  # a periodic syndrome
    assert not matches(refractory, Code.of(ICD10_CM, "G43.819"))  # other migraine
    assert not matches(refractory, Code.of(WHO_ICD10, "G43.1"))
    status = POLICY.categories[0].codes
    assert matches(status, Code.of(ICD10_CM, "G43.011"))
    assert not matches(status, Code.of(ICD10_CM, "G43.019"))


_FORBIDDEN = (
    "flask",
    "sqlalchemy",
    "requests",
    "urllib3",
    "fhir",
    "psycopg",
    "http",
    "referral_service.api",
    "referral_service.adapters",
    "referral_service.fhir",
    "referral_service.services",
)


def test_domain_imports_no_framework_or_io() -> None:
    root = Path(domain_pkg.__file__).parent
    checked = 0
    for info in pkgutil.walk_packages([str(root)], "referral_service.domain."):
        path = root.joinpath(*info.name.split(".")[2:])
        path = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                assert not name.startswith(_FORBIDDEN), f"{info.name} imports {name}"
        checked += 1
    assert checked >= 10
