"""FHIR `instant`s: the one way this service writes a moment (UTC, "Z")."""

from __future__ import annotations

from datetime import UTC, datetime


def format_instant(moment: datetime, *, timespec: str = "milliseconds") -> str:
    """`timespec="seconds"` rounds down to whole seconds (search cursors, Appointment meta)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: an instant needs its offset")
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
