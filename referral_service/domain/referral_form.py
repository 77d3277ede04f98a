"""The clinic's referral form: a Questionnaire (plain JSON, shipped beside the policy file) and
the policy's extraction map, which says which answer feeds which fact of the criteria.

Definition-based extraction in SDC's sense, with the definitions held in the policy rather
than in the form: `linkId -> fact`. The map is checked against the form and the rest of the
policy when the policy loads, so a renamed item or a misspelt metric fails at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What each kind of fact needs of its item's type, and the missing data it settles.
FACT_TYPES: dict[str, tuple[str, ...]] = {
    "metric": ("integer", "decimal"),
    "metric-months": ("integer", "decimal"),
    "acute-days": ("integer", "decimal"),
    "preventive-drug": ("string", "open-choice", "choice"),
    "preventive-months": ("integer", "decimal"),
    "preventive-outcome": ("choice",),
    "pregnancy-asked": ("boolean",),
    "pregnancy-status": ("choice",),
    "pregnancy-status-date": ("date", "dateTime"),
    "red-flag": ("boolean",),
}
SHIPPED = Path(__file__).parent / "policies"
# Stopped for these answers, a preventive trial failed (cc §4.1); the words are its reason.
FAILED_OUTCOMES = {"lack-of-effect": "lack of effect", "side-effects": "side effects"}


class FormError(ValueError):
    """The form or its extraction map does not fit; the message names the linkId."""


@dataclass(frozen=True, slots=True)
class Extraction:
    link_id: str
    fact: str
    metric: str | None = None
    over_months: int = 1
    acute_class: str | None = None
    red_flag: str | None = None


@dataclass(frozen=True)
class ReferralForm:
    questionnaire: dict[str, Any]
    extraction: dict[str, Extraction]
    items: dict[str, dict[str, Any]]  # every item by linkId
    parents: dict[str, str]  # linkId -> its group's linkId
    pregnancy_days: int = 7  # the policy's window for a pregnancy status (its missing item)

    @property
    def id(self) -> str:
        return str(self.questionnaire["id"])

    @property
    def url(self) -> str:
        return str(self.questionnaire["url"])

    @property
    def version(self) -> str:
        return str(self.questionnaire["version"])

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"

    def names_this_form(self, canonical: str) -> bool:
        """`url` or `url|version` of this form (another version of it is not this form)."""
        url, _, version = canonical.partition("|")
        return url == self.url and version in ("", self.version)


def walk(items: list[dict[str, Any]], parent: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    for item in items:
        yield item, parent
        yield from walk(item.get("item", []), item["linkId"])


def load_form(
    spec: dict[str, Any],
    base: Path,
    *,
    metrics: dict[str, str],
    acute_classes: set[str],
    red_flags: set[str],
    pregnancy_days: int = 7,
) -> ReferralForm:
    """The form named by the policy's `referral_form`: beside the policy file, else the one
    shipped beside the default policy (a policy copied elsewhere keeps the clinic's form)."""
    path = base / spec["questionnaire"]
    if not path.exists():
        path = SHIPPED / spec["questionnaire"]
    try:
        questionnaire = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormError(f"referral_form.questionnaire: cannot read {path.name}: {exc}") from exc
    if not isinstance(questionnaire, dict) or questionnaire.get("resourceType") != "Questionnaire":
        raise FormError("referral_form.questionnaire: not a Questionnaire")
    for key in ("id", "url", "version"):
        if not isinstance(questionnaire.get(key), str) or not questionnaire[key]:
            raise FormError(f"referral_form.questionnaire: the form needs a {key}")
    items: dict[str, dict[str, Any]] = {}
    parents: dict[str, str] = {}
    for item, parent in walk(questionnaire.get("item", [])):
        if item["linkId"] in items:
            raise FormError(f"referral_form.questionnaire: linkId {item['linkId']} repeats")
        items[item["linkId"]] = item
        parents[item["linkId"]] = parent
    extraction = {}
    for link_id, rule in spec["extraction"].items():
        extraction[link_id] = _extraction(
            link_id, rule, items, metrics=metrics, acute=acute_classes, red_flags=red_flags
        )
    return ReferralForm(questionnaire, extraction, items, parents, pregnancy_days)


def _extraction(
    link_id: str,
    rule: dict[str, Any],
    items: dict[str, dict[str, Any]],
    *,
    metrics: dict[str, str],
    acute: set[str],
    red_flags: set[str],
) -> Extraction:
    where = f"referral_form.extraction.{link_id}"
    item = items.get(link_id)
    if item is None:
        raise FormError(f"{where}: the form has no item {link_id}")
    fact = rule["fact"]
    if item.get("type") not in FACT_TYPES[fact]:
        wanted = " or ".join(FACT_TYPES[fact])
        raise FormError(
            f"{where}: a {fact} answer must be {wanted}, the item is {item.get('type')}"
        )
    if fact == "metric" and rule.get("metric") not in metrics:
        raise FormError(
            f"{where}: metric {rule.get('metric')!r} is not one of the policy's metrics"
        )
    if fact == "acute-days" and rule.get("acute_class") not in acute:
        raise FormError(f"{where}: acute_class {rule.get('acute_class')!r} is not an acute class")
    if fact == "red-flag" and rule.get("red_flag") not in red_flags:
        raise FormError(f"{where}: red_flag {rule.get('red_flag')!r} is not a red flag")
    return Extraction(
        link_id,
        fact,
        metric=rule.get("metric"),
        over_months=rule.get("over_months") or 1,
        acute_class=rule.get("acute_class"),
        red_flag=rule.get("red_flag"),
    )
