"""Three-valued logic (met / not-met / unknown) and the Finding that carries it with evidence."""

from __future__ import annotations

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


def known(flag: bool, note: str = "", evidence: tuple[str, ...] = ()) -> Finding:
    return Finding(MET if flag else NOT_MET, note, evidence)


def unknown(note: str, missing: str) -> Finding:
    return Finding(UNKNOWN, note, (), (missing,))


def at_least(value: float | None, limit: float, what: str, missing: str,
             evidence: tuple[str, ...] = ()) -> Finding:
    """`value >= limit`, unknown when the value is absent."""
    if value is None:
        return unknown(f"no {what}", missing)
    shown = int(value) if float(value).is_integer() else value
    sign = ">=" if value >= limit else "<"
    return Finding(MET if value >= limit else NOT_MET, f"{what} {shown} ({sign} {limit:g})",
                   evidence)


def all_of(*parts: Finding) -> Finding:
    """'and': not-met wins over unknown, which wins over met."""
    return _combine(parts, NOT_MET, MET)


def any_of(*parts: Finding) -> Finding:
    """'or': met wins over unknown, which wins over not-met."""
    return _combine(parts, MET, NOT_MET)


def _combine(parts: tuple[Finding, ...], decisive: str, default: str) -> Finding:
    for wanted in (decisive, UNKNOWN):
        chosen = [p for p in parts if p.outcome == wanted]
        if chosen:
            return _merge(wanted, chosen)
    return _merge(default, list(parts))


def _merge(outcome: str, parts: list[Finding]) -> Finding:
    if len(parts) == 1:
        part = parts[0]
        return part if outcome == part.outcome else Finding(outcome, part.note, part.evidence)
    notes = "; ".join(p.note for p in parts if p.note)
    evidence = tuple(dict.fromkeys(e for p in parts for e in p.evidence))
    missing = tuple(dict.fromkeys(m for p in parts for m in p.missing))
    return Finding(outcome, notes, evidence, missing if outcome == UNKNOWN else ())
