"""Small, total readers of FHIR JSON: a value of the wrong shape reads as absent, never raises."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from referral_service.domain.facts import ICD10_CM, Code, Concept

# Other names of the code systems the engine reads (cc §8 item 9: ICD-10-CM's OID)
_SYSTEM_ALIASES = {"urn:oid:2.16.840.1.113883.6.90": ICD10_CM}


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        if value:
            return value
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_datetime(value: Any) -> datetime | None:
    """FHIR date or dateTime (partial dates allowed) as an aware UTC datetime."""
    if value is None:  # most optional times are absent
        return None
    text = as_str(value)
    if text is None:
        return None
    try:
        if len(text) == 4:
            parsed = datetime(int(text), 1, 1)
        elif len(text) == 7:
            parsed = datetime(int(text[:4]), int(text[5:7]), 1)
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def as_date(value: Any) -> date | None:
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


def concept(value: Any) -> Concept:
    """A CodeableConcept (or an R5 CodeableReference's concept) as a Concept."""
    value = as_dict(value)
    if "concept" in value and "coding" not in value:
        value = as_dict(value["concept"])
    codes = []
    for coding in as_list(value.get("coding")):
        if not isinstance(coding, dict):
            continue
        code, display = as_str(coding.get("code")), as_str(coding.get("display")) or ""
        if code is not None or display:
            system = as_str(coding.get("system")) or ""
            system = _SYSTEM_ALIASES.get(system, system)
            codes.append(Code.of(system, code or "", display))
    return Concept(tuple(codes), as_str(value.get("text")) or "")
