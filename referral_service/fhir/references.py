"""References a referral makes that could not be read, with what each may have pointed to."""

from __future__ import annotations

import re

from referral_service.domain.facts import UnreadableReference

# What a ServiceRequest field may point to (FHIR R4, plus R5's `reason`); an empty set: anything
_TARGETS = {
    "reasonReference": frozenset(
        {"Condition", "Observation", "DiagnosticReport", "DocumentReference"}
    ),
    "reason": frozenset({"Condition", "Observation", "DiagnosticReport", "DocumentReference"}),
    "supportingInfo": frozenset(),
    "encounter": frozenset({"Encounter"}),
}
_TYPED = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


def unreadable(field: str, ref: str) -> UnreadableReference:
    """`Condition/x` may only be a Condition; `urn:uuid:...` or `#x` may be anything the field
    allows."""
    typed = _TYPED.search(ref)
    kinds = frozenset({typed.group(1)}) if typed else _TARGETS.get(field, frozenset())
    return UnreadableReference(ref, kinds)
