"""FHIR R4 search requests (search.html): which parameters a type has, reading a query into
clauses (repeated parameters AND, comma lists OR), strict or lenient handling, and the range a
date value's precision implies. Pure: no Flask, no SQL."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from referral_service.fhir.outcome import Issue, Unreadable

DEFAULT_COUNT = 20
MAX_COUNT = 100
MAX_OFFSET = 1_000_000  # as api/limits.py holds the query string to; a _search body too
DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
# Paging is ours to read; `_format` is honoured by content negotiation before any search.
PAGING = ("_count", "_offset")
NOT_SEARCH = ("_format",)


@dataclass(frozen=True)
class SearchParameter:
    name: str
    kind: str  # token | reference | date
    modifiers: tuple[str, ...] = ()
    documentation: str = ""


@dataclass(frozen=True)
class Clause:
    """One `name[:modifier]=a,b` of a query: its values are alternatives (OR)."""

    name: str
    modifier: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class Criteria:
    """What a search applies: every clause must hold (AND). `applied` are the (key, value) pairs
    the self link echoes; `ignored` names what lenient handling left out."""

    clauses: tuple[Clause, ...]
    applied: tuple[tuple[str, str], ...]
    count: int
    offset: int
    ignored: tuple[str, ...] = field(default=())

    def of(self, name: str) -> list[Clause]:
        return [clause for clause in self.clauses if clause.name == name]


def read_criteria(
    pairs: Iterable[tuple[str, str]], parameters: Mapping[str, SearchParameter], *, strict: bool
) -> Criteria:
    """Raises Unreadable (400) for a bad value, and in strict handling for any parameter or
    modifier the type does not support; lenient handling leaves those out."""
    clauses: list[Clause] = []
    applied: list[tuple[str, str]] = []
    refused: list[Issue] = []
    paging = {name: "" for name in PAGING}
    for key, raw in pairs:
        name, _, modifier = key.partition(":")
        if key in PAGING:
            paging[key] = raw
            continue
        if key in NOT_SEARCH:
            continue
        problem = _unsupported(name, modifier or None, parameters)
        if problem:
            refused.append(Issue("not-supported", problem, (key,)))
            continue
        values = tuple(v for v in split_values(raw) if v)
        if not values:
            continue  # `name=` constrains nothing (search.html: empty values are ignored)
        clause = Clause(name, modifier or None, values)
        _check_values(parameters[name], clause)
        clauses.append(clause)
        applied.append((key, raw))
    if strict and refused:
        raise Unreadable(*refused)
    count = min(_non_negative("_count", paging["_count"], DEFAULT_COUNT), MAX_COUNT)
    offset = _non_negative("_offset", paging["_offset"], 0)
    ignored = tuple(issue.expression[0] for issue in refused)
    return Criteria(tuple(clauses), tuple(applied), count, offset, ignored)


def _unsupported(
    name: str, modifier: str | None, parameters: Mapping[str, SearchParameter]
) -> str | None:
    parameter = parameters.get(name)
    if parameter is None:
        return f"{name} is not a supported search parameter of this resource type"
    if modifier is not None and modifier not in parameter.modifiers:
        return f"{name}:{modifier} is not a supported modifier"
    return None


def _non_negative(name: str, raw: str, default: int) -> int:
    if raw == "":
        return default
    if not raw.isdigit():
        raise Unreadable.single("value", f"{name} must be a non-negative integer", name)
    if len(raw) > 9 or int(raw) > MAX_OFFSET:
        raise Unreadable.single("value", f"{name} must be at most {MAX_OFFSET}", name)
    return int(raw)


def _check_values(parameter: SearchParameter, clause: Clause) -> None:
    if parameter.kind == "date":
        for value in clause.values:
            read_date(parameter.name, value)


def split_values(raw: str) -> list[str]:
    """The comma-separated alternatives of a value; `\\,` is a literal comma."""
    parts = re.split(r"(?<!\\),", raw)
    return [unescape(part) for part in parts]


def unescape(value: str) -> str:
    return re.sub(r"\\([\\,$|])", r"\1", value)


def split_token(value: str) -> tuple[str | None, str]:
    """`system|code`, `|code` or `code` (search.html token forms)."""
    if "|" in value:
        system, _, code = value.partition("|")
        return (system or None), code
    return None, value


# --- dates ------------------------------------------------------------------------------------

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True)
class DateValue:
    """A date search value: its prefix and the half-open range [low, high) its precision
    implies (`2026` is the whole year, `2026-12-02` the whole day, seconds one second)."""

    prefix: str
    low: datetime
    high: datetime


@dataclass(frozen=True)
class Interval:
    """The instants a point in time must fall in to match: [start, end), None unbounded;
    `outside` inverts it (the `ne` prefix)."""

    start: datetime | None
    end: datetime | None
    outside: bool = False

    def holds(self, moment: datetime) -> bool:
        inside = (self.start is None or moment >= self.start) and (
            self.end is None or moment < self.end
        )
        return inside != self.outside


def read_date(name: str, raw: str) -> DateValue:
    prefix, text = (raw[:2], raw[2:]) if raw[:2] in DATE_PREFIXES else ("eq", raw)
    # An unencoded `+` of an offset arrives as a space from a query string.
    found = _DATE.match(text.replace(" ", "+"))
    try:
        if found is None:
            raise ValueError(text)
        low, high = _range(found)
    except (ValueError, OverflowError):
        raise Unreadable.single(
            "value",
            f"{name} must be a FHIR date or dateTime, optionally prefixed by one of "
            + " ".join(DATE_PREFIXES),
            name,
        ) from None
    return DateValue(prefix, low, high)


def _range(found: re.Match[str]) -> tuple[datetime, datetime]:
    # A value without an offset is read as UTC: the service keeps every instant in UTC.
    parts = found.groupdict()
    zone = _zone(parts["zone"])
    year = int(parts["year"])
    if parts["month"] is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    month = int(parts["month"])
    if parts["day"] is None:
        start = datetime(year, month, 1, tzinfo=UTC)
        return start, _next_month(start)
    day = datetime(year, month, int(parts["day"]), tzinfo=zone)
    if parts["hour"] is None:
        return _utc(day), _utc(day + timedelta(days=1))
    moment = day.replace(hour=int(parts["hour"]), minute=int(parts["minute"]))
    if parts["second"] is None:
        return _utc(moment), _utc(moment + timedelta(minutes=1))
    moment = moment.replace(second=int(parts["second"]))
    if parts["fraction"] is None:
        return _utc(moment), _utc(moment + timedelta(seconds=1))
    digits = parts["fraction"][:6]
    moment = moment.replace(microsecond=int(digits.ljust(6, "0")))
    return _utc(moment), _utc(moment + timedelta(microseconds=10 ** (6 - len(digits))))


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(text)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def interval(value: DateValue, now: datetime) -> Interval:
    """Where a point-in-time element must lie to match `value` (search.html, prefixes): a
    resource's instant is a range of zero width, so `gt` and `sa` agree, as do `lt` and `eb`."""
    low, high = value.low, value.high
    bounds = {
        "eq": Interval(low, high),
        "ne": Interval(low, high, outside=True),
        "lt": Interval(None, low),
        "eb": Interval(None, low),
        "le": Interval(None, high),
        "gt": Interval(high, None),
        "sa": Interval(high, None),
        "ge": Interval(low, None),
    }
    if value.prefix == "ap":
        # search.html recommends 10% of the gap between now and the date.
        slack = abs(now - low) / 10
        return Interval(low - slack, high + slack)
    return bounds[value.prefix]
