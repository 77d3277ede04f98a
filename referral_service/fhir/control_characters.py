"""Control characters in client input: refused at the edge, before anything is stored.

FHIR strings "SHALL NOT contain Unicode character points below 32, except for u0009 (horizontal
tab), u0010 (carriage return) and u0013 (line feed)" (R4 datatypes, string). PostgreSQL cannot
store U+0000 at all, so a NUL that got through would be a 500 on one database and stored on the
other. URLs (path ids, search parameters) carry no whitespace controls either: none is allowed.
"""

from __future__ import annotations

import re
from typing import Any

from referral_service.fhir.outcome import Issue, Unreadable

# In JSON strings and keys: every C0 control but tab, line feed and carriage return.
_FORBIDDEN_IN_STRINGS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# In a URL's path or query, decoded: every C0 control and DEL.
_FORBIDDEN_IN_URLS = re.compile("[\x00-\x1f\x7f]")


def _code_point(match: re.Match[str]) -> str:
    return f"U+{ord(match.group()):04X}"


def url_control_character(text: str) -> str | None:
    """The first control character of a decoded path segment or parameter, as U+XXXX."""
    match = _FORBIDDEN_IN_URLS.search(text)
    return _code_point(match) if match else None


def string_control_character(text: str) -> str | None:
    """The first control character a FHIR string may not hold, as U+XXXX."""
    match = _FORBIDDEN_IN_STRINGS.search(text)
    return _code_point(match) if match else None


def forbid_in_json(document: Any) -> None:
    """400 naming the first JSON string or key (as a FHIRPath-like expression) that holds a
    forbidden control character. The message names the code point, never the content."""
    root = document.get("resourceType") if isinstance(document, dict) else None
    # The resource type names the root only when it is itself clean: the issue naming where
    # must not carry the character it refuses (clients reject such an OperationOutcome).
    if not isinstance(root, str) or string_control_character(root) is not None:
        root = "$"
    found = _first_offence(document, root)
    if found is not None:
        path, code_point, in_name = found
        what = f"an element name in {path}" if in_name else path
        raise Unreadable(
            Issue(
                "value",
                f"{what} holds the control character {code_point}, which FHIR strings may not "
                "contain",
                (path,),
            )
        )


def _first_offence(document: Any, root: str) -> tuple[str, str, bool] | None:
    """(where, which code point, in an element name rather than a value) of the first one."""
    pending: list[tuple[Any, str]] = [(document, root)]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            code_point = string_control_character(value)
            if code_point:
                return path, code_point, False
        elif isinstance(value, dict):
            for key, child in value.items():
                code_point = string_control_character(key)
                if code_point:
                    return path, code_point, True
                pending.append((child, f"{path}.{key}"))
        elif isinstance(value, list):
            pending.extend((child, f"{path}[{index}]") for index, child in enumerate(value))
    return None
