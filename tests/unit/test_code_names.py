"""Codes and rules in words (issue 20) and `missing` in a referrer's words (issue 19): the
policy's official code names, each rule's label, and what a needs-information Task asks for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from referral_service.domain.eligibility import missing
from referral_service.domain.eligibility.rule_labels import rule_label
from referral_service.domain.facts import ICD10_CM, LOINC, RXNORM, SNOMED, Code, Concept
from referral_service.domain.policy import PolicyError, load_policy
from referral_service.services.staff.console import concept_name
from tests.unit.test_policy import _write

GOLDEN = Path(__file__).parent / "eligibility" / "golden_decisions.json"
POLICY = load_policy(None)
NAMES = POLICY.displays


@pytest.mark.parametrize(
    ("system", "code", "shown"),
    [
        (
            ICD10_CM,
            "G43709",
            "G43.709 Chronic migraine without aura, not intractable, without status migrainosus",
        ),
        (
            ICD10_CM,
            "g43.e01",
            "G43.E01 Chronic migraine with aura, not intractable, with status migrainosus",
        ),
        (ICD10_CM, "G44.41", "G44.41 Drug-induced headache, not elsewhere classified, intractable"),
        (LOINC, "8310-5", "8310-5 Body temperature"),
        (SNOMED, "37796009", "37796009 Migraine"),
        (RXNORM, "38404", "38404 topiramate"),
        # not named exactly: the nearest named family, said as such; else the code alone
        (ICD10_CM, "G43.799", "G43.799 (in G43.7: Chronic migraine without aura)"),
        (ICD10_CM, "I10", "I10"),
        (SNOMED, "1234567", "SNOMED CT 1234567"),
        ("https://example.org/local", "X1", "X1"),
    ],
)
def test_codes_are_shown_with_their_official_name(system: str, code: str, shown: str) -> None:
    assert NAMES.named(system, code) == shown


def test_console_prefers_the_official_name_and_never_invents_one() -> None:
    same = "Chronic migraine without aura, not intractable, without status migrainosus"
    sent = Concept((Code.of(ICD10_CM, "G43.709", same.upper()),))
    assert concept_name(sent, NAMES) == f"G43.709 {same}"
    other = Concept((Code.of(ICD10_CM, "G44.22", "Chronic tension-type headache, intractable"),))
    assert concept_name(other, NAMES) == (
        'G44.22 Chronic tension-type headache (sent as "Chronic tension-type headache,'
        ' intractable")'
    )
    unnamed = Concept((Code.of(ICD10_CM, "I10", "Essential hypertension"),))
    assert concept_name(unnamed, NAMES) == "Essential hypertension (I10)"
    assert concept_name(Concept((Code.of(ICD10_CM, "I10"),)), NAMES) == "I10"
    assert concept_name(Concept(text="migraine"), NAMES) == "migraine"


def test_displays_are_optional(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, lambda data: data.pop("displays")))
    assert policy.displays.named(ICD10_CM, "G43709") == "G43.709"
    assert policy.version == POLICY.version


@pytest.mark.parametrize(
    ("system", "entries", "key"),
    [
        ("icd10", {"G43.709": ""}, "displays.icd10"),  # an empty name
        ("icd10", {"not a code": "x"}, "displays.icd10"),
        ("loinc", {"8310": "Body temperature"}, "displays.loinc"),  # no check digit
        ("snomed", {"37796009": 5}, "displays.snomed"),  # not a string
        ("ucum", {"mg": "milligram"}, "displays"),  # a system the policy does not know
    ],
)
def test_a_bad_display_names_its_key(tmp_path: Path, system: str, entries: dict, key: str) -> None:
    def mutate(data: dict) -> None:  # type: ignore[type-arg]
        data["displays"][system] = entries

    with pytest.raises(PolicyError, match=re.escape(key)):
        load_policy(_write(tmp_path, mutate))


def test_every_named_code_is_one_the_policy_or_its_referrals_use() -> None:
    """A sanity check that the names sit on the right codes: each ICD-10-CM name of a
    chronic-migraine family says chronic migraine, each 'intractable' code has a 1 in the 5th
    place, each 'with status migrainosus' code a 1 in the 6th."""
    for (system, code), name in NAMES.by_code.items():
        assert name == name.strip() and name
        if system != ICD10_CM or not code.startswith("G43"):
            continue
        if code.startswith(("G437", "G43E")):
            assert name.startswith("Chronic migraine"), (code, name)
        if len(code) >= 5:
            assert (code[4] == "1") == (", intractable" in name), (code, name)
        if len(code) == 6:
            assert (code[5] == "1") == ("with status migrainosus" in name.replace("without", ""))


def test_every_rule_the_engine_reports_has_a_label_in_words() -> None:
    rules = {r["rule"] for d in json.loads(GOLDEN.read_text()).values() for r in d["reasons"]}
    assert len(rules) > 25
    for rule in sorted(rules | {"staff-review"}):
        label = rule_label(rule)
        assert label != rule and label[0].isupper(), rule
        assert not re.search(r"\b[a-z]+-[a-z]+\.[a-z]", label), label  # no rule id inside
    assert rule_label("category.chronic-migraine").startswith("Headache type: Chronic migraine")
    assert rule_label("exclusion.magnesium-sulfate") == "Something that rules out magnesium sulfate"
    assert rule_label("something.new") == "something.new"  # unknown: shown as it is


CODE_SYSTEM_WORDS = re.compile(
    r"Observation|MedicationStatement|Patient\.|Condition\.|effectivePeriod|LOINC|SNOMED|"
    r"ICD|RxNorm|[a-z]+-days-per-month|\b\d{4,}-\d\b"
)


def test_missing_is_written_in_a_referrers_words() -> None:
    """Issue 19: whoever reads the Task can answer from the chart, without our code systems."""
    asked = [
        missing.BIRTH_DATE,
        missing.HEADACHE_ONSET,
        missing.HEADACHE_DAYS,
        missing.MIGRAINE_DAYS,
        missing.DEBILITATING_DAYS,
        missing.DURATION,
        missing.PREVENTIVES,
        missing.ACUTE_MEDICATION,
        missing.PREGNANCY_STATUS.format(days=7),
    ]
    for text in asked:
        assert not CODE_SYSTEM_WORDS.search(text), text
    every = {m for d in json.loads(GOLDEN.read_text()).values() for m in d["missing"]}
    plain = {m for m in every if not m.startswith("the resource at ")}
    assert plain and not any(CODE_SYSTEM_WORDS.search(m) for m in plain)
