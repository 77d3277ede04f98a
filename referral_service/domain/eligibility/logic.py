"""Three-valued logic (met / not-met / unknown) and the Finding that carries it with evidence."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

MET = "met"
NOT_MET = "not-met"
UNKNOWN = "unknown"


class Finding(NamedTuple):
    """The outcome of one rule or part of a rule, with what settled it and what would.
    (A NamedTuple: immutable, and cheap to make on the hot path.)"""

    outcome: str
    note: str = ""
    evidence: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def met(self) -> bool:
        return self.outcome == MET

    @property
    def unknown(self) -> bool:
        return self.outcome == UNKNOWN


# Finding((outcome, note, evidence, missing)) without the NamedTuple's Python-level __new__.
new_finding = partial(tuple.__new__, Finding)


def known(flag: bool, note: str = "", evidence: tuple[str, ...] = ()) -> Finding:
    return new_finding((MET if flag else NOT_MET, note, evidence, ()))


def unknown(note: str, missing: str) -> Finding:
    return new_finding((UNKNOWN, note, (), (missing,)))


def at_least(
    value: float | None, limit: float, what: str, missing: str, evidence: tuple[str, ...] = ()
) -> Finding:
    """`value >= limit`, unknown when the value is absent."""
    if value is None:
        return new_finding((UNKNOWN, f"no {what}", (), (missing,)))
    shown = int(value) if float(value).is_integer() else value
    if value >= limit:
        return new_finding((MET, f"{what} {shown} (>= {limit:g})", evidence, ()))
    return new_finding((NOT_MET, f"{what} {shown} (< {limit:g})", evidence, ()))


def all_of(*parts: Finding) -> Finding:
    """'and': not-met wins over unknown, which wins over met."""
    return _combine(parts, NOT_MET, MET)


def any_of(*parts: Finding) -> Finding:
    """'or': met wins over unknown, which wins over not-met."""
    return _combine(parts, MET, NOT_MET)


def _combine(parts: tuple[Finding, ...], decisive: str, default: str) -> Finding:
    outcome = default  # when no part is decisive or unknown, every part is `default`
    for part in parts:
        if part[0] == decisive:
            outcome = decisive
            break
        if part[0] == UNKNOWN:
            outcome = UNKNOWN
    if outcome == default:
        return _merge(outcome, parts)
    return _merge(outcome, [part for part in parts if part[0] == outcome])


def _merge(outcome: str, parts: Sequence[Finding]) -> Finding:
    if len(parts) == 1:
        part = parts[0]
        return part if outcome == part[0] else new_finding((outcome, part[1], part[2], ()))
    notes: list[str] = []
    evidence: list[str] = []
    for _, note, refs, _ in parts:
        if note:
            notes.append(note)
        evidence += refs
    missing: tuple[str, ...] = ()
    if outcome == UNKNOWN:
        missing = tuple(dict.fromkeys([item for part in parts for item in part[3]]))
    return new_finding((outcome, "; ".join(notes), tuple(dict.fromkeys(evidence)), missing))
