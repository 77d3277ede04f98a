"""The policy file: the built-in default loads, and a malformed file names the bad key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from referral_service.domain.policy import DEFAULT_POLICY, PolicyError, load_policy


def _write(tmp_path: Path, mutate) -> str:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    mutate(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_default_policy_loads_with_a_version() -> None:
    policy = load_policy(None)
    assert policy.version == "2026.12-default.1"  # criteria revision 2026-12 (section 8)
    assert policy.thresholds["headache_days_chronic"] == 15
    assert "G4453" in policy.red_flags[0].codes.icd10


def test_every_default_value_cites_a_source() -> None:
    """Each key line (top level or one level down) carries a comment naming its source."""
    keyed = re.compile(r"^( {2})?[A-Za-z_][\w-]*: *[^ #]")
    uncited = [
        line
        for line in DEFAULT_POLICY.read_text().splitlines()
        if keyed.match(line) and "#" not in line
    ]
    assert uncited == []


def test_who_icd10_mapping_is_compiled_apart_from_icd10_cm() -> None:
    policy = load_policy(None)
    haemorrhage = next(f for f in policy.red_flags if f.id == "haemorrhage-stroke")
    assert haemorrhage.codes.who_icd10 == {"I60", "I61", "I62", "I63"}
    heart_block = policy.contraindications["magnesium-sulfate"].excluded[0].codes
    assert (heart_block.icd10, heart_block.who_icd10) == (
        {"I441", "I442", "I4430", "I4439"},
        {"I441", "I442"},
    )
    thunderclap = next(f for f in policy.red_flags if f.id == "thunderclap")
    assert thunderclap.codes.who_icd10 == frozenset()


def test_ranges_expand() -> None:
    policy = load_policy(None)
    assert {"I20", "I21", "I25"} <= policy.contraindications["dhe"].excluded[1].codes.icd10
    assert {"K920", "K921", "K922"} <= policy.contraindications["ketorolac"].excluded[0].codes.icd10


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    def mutate(data: dict) -> None:  # type: ignore[type-arg]
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (
            _set("thresholds.headache_days_chronic", "fifteen"),
            "thresholds.headache_days_chronic",
            "Not a valid integer.",
        ),
        (
            _set("thresholds.fever_celsius", "hot"),
            "thresholds.fever_celsius",
            "Not a valid number.",
        ),
        (lambda d: d["windows"].pop("vitals_hours"), "windows.vitals_hours", "Missing data"),
        (lambda d: d.pop("version"), "version", "Missing data"),
        (_set("thresholds.unknown_threshold", 3), "thresholds.unknown_threshold", "Unknown field."),
        (_set("protocols.dhe.fallback", "nowhere"), "protocols.dhe.fallback", "Unknown protocol"),
        (_set("default_protocol", "magic"), "default_protocol", "Unknown protocol"),
        (
            _set("preventive_classes.snri", ["venlafaxine", "duloxetine"]),
            "preventive_classes.snri.1",
            "Unknown drug",
        ),
        (
            _set("code_sets.malignancy", {"icd10": ["C96-C00x"]}),
            "code_sets.malignancy.icd10.0",
            "ICD-10-CM",
        ),
        (lambda d: d["code_sets"].pop("pregnancy"), "code_sets.pregnancy", "Missing data"),
        (
            _set("red_flags.1.who_icd10", ["I60.12"]),  # WHO: categories or 4 characters
            "red_flags.1.who_icd10.0",
            "String does not match",
        ),
        (
            _set("code_sets.migraine.who_icd10", ["G43-H45"]),
            "code_sets.migraine.who_icd10.0",
            "WHO ICD-10",
        ),
        (lambda d: d["observations"].pop("hcg_urine"), "observations.hcg_urine", "Missing data"),
        (
            _set("acute_classes.triptan.days", 0),
            "acute_classes.triptan.days",
            "greater than or equal to 1",
        ),
    ],
)
def test_malformed_policy_names_the_bad_key(
    tmp_path: Path,
    mutate,
    key: str,  # type: ignore[no-untyped-def]
    message: str,
) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    text = str(caught.value)
    assert text.startswith(f"policy file {path}: {key}: "), text
    assert message in text


def test_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(str(tmp_path / "absent.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(str(bad))
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(str(listed))


def test_a_stricter_policy_changes_the_decision(tmp_path: Path) -> None:
    from tests.unit.eligibility.builders import Referral

    path = _write(tmp_path, _set("thresholds.headache_days_chronic", 25))
    assert Referral().evaluate().decision == "eligible"
    decision = Referral(headache="G43.909").evaluate(load_policy(path))
    assert decision.category != "chronic-migraine"


def test_the_revision_2026_12_lists_are_in_the_policy() -> None:
    """Section 8 items 4 and 6 live in the file, not in code."""
    policy = load_policy(None)
    altered = next(f for f in policy.red_flags if f.id == "altered-consciousness")
    assert {"R40", "R4182", "R410"} <= altered.codes.icd10 and altered.acute
    assert ("R4182", "R41.82", "altered mental status") in altered.named
    assert policy.ed_exception["imaging_categories"] == ["RAD", "CT", "NMR"]
    assert policy.ed_exception["report_statuses"] == ["final", "amended", "corrected"]


def test_a_named_red_flag_code_must_look_like_icd10(tmp_path: Path) -> None:
    def mutate(data: dict) -> None:  # type: ignore[type-arg]
        data["red_flags"][0]["named"] = {"not a code": "words"}

    with pytest.raises(PolicyError, match="red_flags.0.named"):
        load_policy(_write(tmp_path, mutate))
