"""Drug names in free text: the policy's DrugIndex must find every ingredient name that occurs
anywhere in a medication's text or coding display, overlapping names included, whatever scan it
uses to go fast. The reference here is the definition itself: a name counts when it is a
substring of the lower-cased text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_service.domain.facts import Code, Concept
from referral_service.domain.policy import DrugIndex, DrugList, Policy, load_policy

POLICY = load_policy(None)


def _owners(policy: Policy) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = {}
    for drug_id, drug in policy.drugs.items():
        for name in drug.names:
            owners.setdefault(name, set()).add(drug_id)
    return owners


OWNERS = _owners(POLICY)
NAMES = sorted(OWNERS)


def named_in(text: str, owners: dict[str, set[str]] = OWNERS) -> frozenset[str]:
    lowered = text.lower()
    return frozenset(i for name, ids in owners.items() if name in lowered for i in ids)


# Texts built from whole names, their heads and tails (so that names overlap and run on past one
# another), separators and stray letters.
_piece = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).flatmap(lambda n: st.integers(1, len(n)).map(lambda k: n[:k])),
    st.sampled_from(NAMES).flatmap(lambda n: st.integers(0, len(n) - 1).map(lambda k: n[k:])),
    st.sampled_from([" ", "-", "/", " 50 mg ", "(", ")", "+"]),
    st.text(alphabet="aeinoprstxl", max_size=3),
)
medication_texts = st.lists(_piece, max_size=8).map("".join)


def test_the_policy_has_names_that_overlap() -> None:
    """The property below is only telling if some names sit inside or run into others."""
    inside = [(a, b) for a in NAMES for b in NAMES if a != b and a in b]
    assert inside, "no drug name contains another: the overlap cases are untested"


@settings(max_examples=600, deadline=None)
@given(medication_texts, st.booleans())
def test_every_name_in_the_text_is_found(text: str, as_display: bool) -> None:
    concept = (
        Concept((Code("http://example.org/local", "x", text),)) if as_display else Concept((), text)
    )
    assert POLICY.drug_index.drug_ids(concept) == named_in(text)


@pytest.mark.parametrize(
    "names",
    [
        ("ab", "bc"),  # one runs on past the end of the other
        ("abc", "b"),  # one inside the other
        ("ab", "abc", "bcd"),
        ("a", "aa", "aaa"),
    ],
)
@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abcd ", max_size=12))
def test_overlapping_names_in_a_small_alphabet(names: tuple[str, ...], text: str) -> None:
    drugs = {name: DrugList(ids=frozenset({name}), names=(name,)) for name in names}
    index = DrugIndex.build(drugs)
    owners = {name: {name} for name in names}
    assert index.drug_ids(Concept((), text)) == named_in(text, owners)
