"""ServiceRequest.occurrence[x]: when the referrer wants the infusions, as the planner's
Occurrence.

- occurrencePeriod bounds every visit: from its start to its end (inclusive: an end given as a
  day, month or year runs to the end of it). Either side may be missing.
- occurrenceDateTime fixes the first visit's local day (a partial date: somewhere in that month
  or year); the time of day, if given, is not kept: the planner chooses the start.
- A dateTime without an offset is read in the clinic's zone; a date is a clinic day.
- occurrenceTiming is not read (the series' spacing is the clinic's protocol), nor is a value
  that is no FHIR date: validation at intake refuses those, so the booking is not held up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, tzinfo
from typing import Any

from referral_service.domain.scheduling.planner import Occurrence

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def requested_occurrence(service_request: Mapping[str, Any], zone: tzinfo) -> Occurrence:
    period = service_request.get("occurrencePeriod")
    if isinstance(period, Mapping):
        opens = _bound(period.get("start"), zone, end=False)
        closes = _bound(period.get("end"), zone, end=True)
        return Occurrence(opens, closes)
    when = service_request.get("occurrenceDateTime")
    if isinstance(when, str):
        opens = _bound(when, zone, end=False)
        closes = _bound(when, zone, end=True)
        if opens is None or closes is None:
            return Occurrence()
        if "T" in when:
            return Occurrence.on_day(opens.astimezone(zone).date(), zone)
        return Occurrence(opens, closes, first_visit_only=True)
    return Occurrence()


def _bound(value: Any, zone: tzinfo, *, end: bool) -> datetime | None:
    """The moment a FHIR date/dateTime opens at (or, `end`, closes at: the next day, month or
    year for a date), or None when there is no usable value."""
    if not isinstance(value, str):
        return None
    partial = _PARTIAL.match(value)
    try:
        if partial:
            year, month = int(partial[1]), int(partial[2] or 0)
            if month:
                day = date(year, month, 1)
                after = date(year + month // 12, month % 12 + 1, 1)
            else:
                day, after = date(year, 1, 1), date(year + 1, 1, 1)
            return _midnight(after if end else day, zone)
        if "T" not in value:
            day = date.fromisoformat(value)
            return _midnight(date.fromordinal(day.toordinal() + 1) if end else day, zone)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)
