"""Indexes compiled once per policy so that each evaluation only does look-ups: code sets by
code (bit masks), drug names by a trie regex."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from referral_service.domain.facts import (
    ICD10_CM,
    RXNORM,
    SNOMED,
    WHO_ICD10,
    Code,
    Concept,
    normalize_code,
)
from referral_service.domain.policy.model import CodeSet, DrugList, PolicyError


class CodeIndex:
    """Every code set of a policy by its codes, so that one pass over a concept's codes gives
    the mask of the sets it matches: `codes.bit & mask(concept)` is true exactly when one of
    the concept's codes is in the set: an ICD-10-CM code under one of its family prefixes or
    with one of its (category, position, character) triples, one of its SNOMED codes, or a
    WHO ICD-10 code in one of its WHO categories or four-character codes."""

    def __init__(self) -> None:
        self.icd: dict[str, int] = {}  # family prefix -> bits of the sets holding it
        self.characters: dict[str, dict[tuple[int, str], int]] = {}  # category -> (pos, char)
        self.snomed: dict[str, int] = {}
        self.who: dict[str, int] = {}  # WHO category or four-character code -> bits
        self.bits: dict[frozenset[Any], int] = {}  # keys -> bit (equal sets share one)
        # Every start of a family prefix -> the bits of all prefixes that start it, so that a
        # code's ICD bits are those of its longest start found here (see mask)
        self.stems: dict[str, int] = {}
        # category -> ((1-based position >= 4, {character: bits}), ...)
        self.positions: dict[str, tuple[tuple[int, dict[str, int]], ...]] = {}

    def add(
        self,
        icd: frozenset[str],
        snomed: frozenset[str],
        chars: tuple[tuple[str, int, str], ...],
        who: frozenset[str] = frozenset(),
    ) -> int:
        """Index one code set; its bit."""
        keys = frozenset(
            {("i", p) for p in icd}
            | {("s", c) for c in snomed}
            | {("w", c) for c in who}
            | set(chars)
        )
        if not keys:
            return 0
        if keys in self.bits:
            return self.bits[keys]
        bit = self.bits[keys] = 1 << len(self.bits)
        for prefix in icd:
            self.icd[prefix] = self.icd.get(prefix, 0) | bit
        for code in snomed:
            self.snomed[code] = self.snomed.get(code, 0) | bit
        for code in who:
            self.who[code] = self.who.get(code, 0) | bit
        for category, position, char in chars:
            at = self.characters.setdefault(category, {})
            at[position, char] = at.get((position, char), 0) | bit
        self._index_stems()
        return bit

    def _index_stems(self) -> None:
        icd = self.icd
        self.stems = {
            prefix[:n]: _bits_of_starts(icd, prefix[:n])
            for prefix in icd
            for n in range(1, len(prefix) + 1)
        }
        by_position: dict[str, dict[int, dict[str, int]]] = {}
        for category, at in self.characters.items():
            for (position, char), bits in at.items():
                if position >= 4:  # (a code's first three characters are its category)
                    chars = by_position.setdefault(category, {}).setdefault(position, {})
                    chars[char] = bits
        self.positions = {
            category: tuple(sorted(at.items())) for category, at in by_position.items()
        }

    def matches(self, codes: CodeSet, code: Code) -> bool:
        """For one-off checks; the engine keeps each concept's mask."""
        return bool(codes.bit & self.mask(Concept((code,))))

    def mask(self, concept: Concept) -> int:
        mask = 0
        for code in concept.codes:
            system = code.system
            if system == ICD10_CM:
                value, stems = code.code, self.stems
                for n in range(1, len(value) + 1):  # a start not found starts no prefix either
                    bits = stems.get(value[:n])
                    if bits is None:
                        break
                    mask |= bits
                positions = self.positions.get(value[:3]) if len(value) > 3 else None
                if positions is not None:
                    for position, chars in positions:
                        if position <= len(value):
                            mask |= chars.get(value[position - 1], 0)
            elif system == SNOMED:
                mask |= self.snomed.get(code.code, 0)
            elif system == WHO_ICD10:  # (WHO subcodes mean other things: no longer prefixes)
                mask |= self.who.get(code.code[:3], 0) | self.who.get(code.code[:4], 0)
        return mask


def _bits_of_starts(icd: dict[str, int], text: str) -> int:
    """The bits of every family prefix that `text` starts with."""
    bits = 0
    for n in range(1, len(text) + 1):
        bits |= icd.get(text[:n], 0)
    return bits


@dataclass(frozen=True)
class DrugIndex:
    """Every drug of the policy: a medication concept -> the drug ids it names, by RxNorm code
    or by any ingredient name found in its text (overlaps included)."""

    by_rxnorm: dict[str, frozenset[str]]
    by_name: dict[str, frozenset[str]]  # a found name -> ids of it and of names inside it
    pattern: re.Pattern[str] | None  # the longest name at every position (overlapping)
    scan: re.Pattern[str] | None  # names one after another, each with the character after it
    run_on: dict[str, frozenset[str]]  # see _run_on

    @classmethod
    def build(cls, drugs: dict[str, DrugList]) -> DrugIndex:
        by_rxnorm: dict[str, set[str]] = {}
        owners: dict[str, set[str]] = {}
        for drug_id, drug in drugs.items():
            for code in drug.rxnorm:
                by_rxnorm.setdefault(code, set()).add(drug_id)
            for name in drug.names:
                owners.setdefault(name, set()).add(drug_id)
        by_name = {
            name: frozenset(i for other, ids in owners.items() if other in name for i in ids)
            for name in owners
        }
        pattern = scan = None
        if owners:
            # At each position the longest name that starts there, as a trie so that a position
            # fails on its first character instead of trying every name in turn.
            trie = _trie_pattern(owners)
            pattern = re.compile(f"(?=({trie}))")
            if "" not in owners:  # (an empty name matches everywhere: always scan every position)
                scan = re.compile(f"({trie})(?=(.?))", re.DOTALL)
        rxnorm = {k: frozenset(v) for k, v in by_rxnorm.items()}
        return cls(rxnorm, by_name, pattern, scan, _run_on(list(owners)))

    def drug_ids(self, concept: Concept) -> frozenset[str]:
        """RxNorm codes' ids first, then the names in the text, then in each display."""
        found: set[str] = set()
        by_rxnorm = self.by_rxnorm
        for code in concept.codes:
            if code.system == RXNORM and code.code in by_rxnorm:
                found |= by_rxnorm[code.code]
        if concept.text:
            self._add_named(concept.text.lower(), found)
        for code in concept.codes:
            if code.display:
                self._add_named(code.display.lower(), found)
        return frozenset(found)

    def _add_named(self, text: str, found: set[str]) -> None:
        """Add the ids of the drugs named in `text`."""
        by_name = self.by_name
        ids = by_name.get(text)
        if ids is not None:  # just a name: the longest at 0, and every other name is inside it
            found |= ids
            return
        for name in self._names_in(text):
            found |= by_name[name]

    def _names_in(self, text: str) -> list[str]:
        """The longest name at each position of `text` that starts one, as far as the drug
        ids go: one left-to-right pass finds each name and the character after it; a name
        begun inside a found one is inside it (by_name has its ids) unless it runs on past
        the end, which needs that next character to be one of run_on's. Only then (rarely)
        does the slower pass try every position."""
        if self.scan is None:
            return self.pattern.findall(text) if self.pattern is not None else []
        found = self.scan.findall(text)
        run_on = self.run_on
        names = []
        for name, after in found:
            if after in run_on[name]:
                return self.pattern.findall(text)  # type: ignore[union-attr]
            names.append(name)
        return names


def _run_on(names: list[str]) -> dict[str, frozenset[str]]:
    """For each name, the characters that can follow it in a text where another name begins
    inside it and runs on past its end ("naproxen" + "o" may be "...enoxaparin")."""
    return {
        name: frozenset(
            other[k]
            for other in names
            for k in range(1, min(len(name), len(other)))
            if name.endswith(other[:k])
        )
        for name in names
    }


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching the longest of `words` at a position: 'ab|abc|b' -> '(?:ab(?:c)?|b)'."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node(trie)


def _trie_node(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _trie_node(child) for char, child in node.items() if char]
    if not branches:
        return ""
    if "" in node:  # a word ends here: longer words first (greedy), else stop
        return "(?:" + "|".join(branches) + ")?"
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def expand_icd_range(entry: str) -> list[str]:
    """'I20-I25' -> I20..I25; 'K92.0-K92.2' -> K920, K921, K922; 'G43.7' -> G437."""
    if "-" not in entry:
        return [normalize_code(ICD10_CM, entry)]
    low, high = (normalize_code(ICD10_CM, part) for part in entry.split("-", 1))
    stem = low[:-2] if low[-2:].isdigit() and high[-2:].isdigit() else low[:-1]
    width = len(low) - len(stem)
    if not high.startswith(stem) or len(high) != len(low):
        raise PolicyError(f"code range {entry}: ends must share a stem and a length")
    start, end = int(low[len(stem) :]), int(high[len(stem) :])
    return [f"{stem}{n:0{width}d}" for n in range(start, end + 1)]
