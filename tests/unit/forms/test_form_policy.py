"""The referral form and its extraction map are checked when the policy loads; a policy may
ship its own form beside it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from referral_service.domain.policy import DEFAULT_POLICY, PolicyError, load_policy

SHIPPED_FORM = DEFAULT_POLICY.parent / "referral-form.json"


def _write(tmp_path: Path, mutate: Callable[[dict], None]) -> str:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    mutate(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _map(link_id: str, rule: dict | None) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        extraction = data["referral_form"]["extraction"]
        if rule is None:
            extraction.pop(link_id)
        else:
            extraction[link_id] = rule

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            _map("cluster-days", {"fact": "metric", "metric": "headache_days"}),
            "no item cluster-days",
        ),
        (_map("callback-name", {"fact": "metric", "metric": "headache_days"}), "must be integer"),
        (_map("migraine-days-per-month", {"fact": "metric", "metric": "aura_days"}), "aura_days"),
        (_map("acute-opioid-days", {"fact": "acute-days", "acute_class": "cannabis"}), "cannabis"),
        (_map("red-flag-seizure", {"fact": "red-flag", "red_flag": "hiccups"}), "hiccups"),
        (_map("red-flag-seizure", {"fact": "dream"}), "fact"),
        (_map("pregnancy-status", {"fact": "red-flag", "red_flag": "seizure"}), "must be boolean"),
    ],
)
def test_a_bad_extraction_map_fails_at_load_naming_the_item(
    tmp_path: Path, mutate: Callable[[dict], None], message: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(_write(tmp_path, mutate))
    assert message in str(caught.value)
    assert "referral_form" in str(caught.value)


def test_a_policy_ships_its_own_form_beside_it(tmp_path: Path) -> None:
    form = json.loads(SHIPPED_FORM.read_text())
    form["version"] = "2027.1.0"
    (tmp_path / "clinic-form.json").write_text(json.dumps(form))

    def mutate(data: dict) -> None:
        data["referral_form"]["questionnaire"] = "clinic-form.json"

    policy = load_policy(_write(tmp_path, mutate))
    assert policy.form is not None and policy.form.version == "2027.1.0"


def test_a_form_without_a_url_is_refused(tmp_path: Path) -> None:
    form = json.loads(SHIPPED_FORM.read_text())
    del form["url"]
    (tmp_path / "clinic-form.json").write_text(json.dumps(form))

    def mutate(data: dict) -> None:
        data["referral_form"]["questionnaire"] = "clinic-form.json"

    with pytest.raises(PolicyError, match="needs a url"):
        load_policy(_write(tmp_path, mutate))


def test_a_policy_without_a_form_has_none(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, lambda data: data.pop("referral_form")))
    assert policy.form is None
