"""Golden decisions: the engine must reproduce, field for field, the decisions recorded in
golden_decisions.json before the engine was tuned for speed.

Referrals come from the criteria table and from seeded random combinations of the property
tests' modifiers. Regenerate (only after a deliberate clinical change) with
`python -m tests.unit.eligibility.test_golden_decisions`.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import builders
from .builders import Referral
from .test_criteria_table import CASES
from .test_properties import HEADACHES, MODIFIERS, RED_FLAGS

GOLDEN = Path(__file__).with_name("golden_decisions.json")
RANDOM_REFERRALS = 300


def _random_referral(seed: int) -> Referral:
    rng = random.Random(seed)
    referral = Referral(
        age=rng.choice([None, *range(10, 91)]),
        sex=rng.choice(["male", "female"]),
        headache=rng.choice(HEADACHES),
        headache_onset_days=rng.choice([None, 20, 60, 95, 200, 1500]),
        metrics=rng.random() < 0.7,
    )
    for modifier in rng.sample(MODIFIERS, rng.randint(0, 6)):
        modifier(referral)
    if rng.random() < 0.15:
        rng.choice(RED_FLAGS)(referral)
    return referral


def _referrals() -> Iterator[tuple[str, Callable[[], Referral]]]:
    for case in CASES:
        yield f"table: {case.name}", case.build
    for seed in range(RANDOM_REFERRALS):
        yield f"random: {seed}", lambda seed=seed: _random_referral(seed)


def _decide(build: Callable[[], Referral]) -> dict[str, Any]:
    # Evidence names resources by a running counter: restart it so each referral is stable.
    builders._ids = itertools.count(1)
    return build().evaluate().to_dict()


_CASES = list(_referrals())


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_golden_file_covers_every_referral(golden: dict[str, Any]) -> None:
    assert sorted(golden) == sorted(name for name, _ in _CASES)
    assert len({g["decision"] for g in golden.values()}) == 5  # every kind of decision


@pytest.mark.parametrize(("name", "build"), _CASES, ids=[name for name, _ in _CASES])
def test_engine_reproduces_the_golden_decision(
    name: str, build: Callable[[], Referral], golden: dict[str, Any]
) -> None:
    assert _decide(build) == golden[name]


if __name__ == "__main__":
    lines = (
        f"{json.dumps(name)}: {json.dumps(_decide(build), sort_keys=True)}"
        for name, build in _CASES
    )  # one referral a line: readable diffs
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
