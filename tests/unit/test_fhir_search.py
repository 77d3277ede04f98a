"""Reading FHIR search requests (fhir/search.py): precision ranges, prefixes, AND/OR, handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from referral_service.adapters.db import search as search_sql
from referral_service.fhir import search_parameters
from referral_service.fhir.outcome import Unreadable
from referral_service.fhir.search import (
    DATE_PREFIXES,
    interval,
    read_criteria,
    read_date,
    split_values,
)

NOW = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2026", at(2026, 1, 1), at(2027, 1, 1)),
        ("2026-12", at(2026, 12, 1), at(2027, 1, 1)),
        ("2026-02", at(2026, 2, 1), at(2026, 3, 1)),
        ("2026-12-02", at(2026, 12, 2), at(2026, 12, 3)),
        ("2026-12-31", at(2026, 12, 31), at(2027, 1, 1)),
        ("2026-12-02T10:15Z", at(2026, 12, 2, 10, 15), at(2026, 12, 2, 10, 16)),
        ("2026-12-02T10:15:30Z", at(2026, 12, 2, 10, 15, 30), at(2026, 12, 2, 10, 15, 31)),
        ("2026-12-02T10:15:30", at(2026, 12, 2, 10, 15, 30), at(2026, 12, 2, 10, 15, 31)),
        (
            "2026-12-02T10:15:30.5Z",
            at(2026, 12, 2, 10, 15, 30, 500000),
            at(2026, 12, 2, 10, 15, 30, 600000),
        ),
        ("2026-12-02T12:00:00+02:00", at(2026, 12, 2, 10), at(2026, 12, 2, 10, 0, 1)),
    ],
)
def test_a_value_covers_the_range_of_its_precision(value: str, low: datetime, high: datetime):
    read = read_date("date", value)
    assert (read.prefix, read.low, read.high) == ("eq", low, high)


DAY = "2026-12-02"
BEFORE = at(2026, 12, 1, 23, 59, 59, 999999)
FIRST = at(2026, 12, 2)
LAST = at(2026, 12, 2, 23, 59, 59, 999999)
AFTER = at(2026, 12, 3)

# For each prefix, which of (just before the day, its first instant, its last, just after).
PREFIX_TABLE = {
    "eq": (False, True, True, False),
    "ne": (True, False, False, True),
    "lt": (True, False, False, False),
    "eb": (True, False, False, False),
    "le": (True, True, True, False),
    "gt": (False, False, False, True),
    "sa": (False, False, False, True),
    "ge": (False, True, True, True),
    "ap": (True, True, True, True),
}


@pytest.mark.parametrize("prefix", DATE_PREFIXES)
def test_each_prefix_at_the_boundaries_of_a_day(prefix: str) -> None:
    bounds = interval(read_date("date", f"{prefix}{DAY}"), NOW)
    assert tuple(bounds.holds(m) for m in (BEFORE, FIRST, LAST, AFTER)) == PREFIX_TABLE[prefix]


def test_ap_widens_by_a_tenth_of_the_gap_to_now() -> None:
    bounds = interval(read_date("date", "ap2026-11-22"), NOW)  # ten days and 17 h before NOW
    slack = (NOW - at(2026, 11, 22)) / 10
    assert bounds.start == at(2026, 11, 22) - slack
    assert bounds.end == at(2026, 11, 23) + slack
    assert not bounds.holds(at(2026, 11, 20))
    assert bounds.holds(at(2026, 11, 21))


@pytest.mark.parametrize(
    "value", ["soon", "2026-13", "2026-12-32", "26-12-02", "xx2026", "2026-12-02T25:00Z", ""]
)
def test_a_value_that_is_no_date_is_refused(value: str) -> None:
    with pytest.raises(Unreadable):
        read_date("date", value)


def test_commas_separate_alternatives_unless_escaped() -> None:
    assert split_values("a,b") == ["a", "b"]
    assert split_values(r"a\,b,c") == ["a,b", "c"]


TASK = search_parameters.TASK


def test_repeated_parameters_are_separate_clauses_and_commas_one() -> None:
    criteria = read_criteria(
        [("status", "accepted"), ("status", "received,ready")], TASK, strict=False
    )
    assert [c.values for c in criteria.of("status")] == [("accepted",), ("received", "ready")]


def test_lenient_handling_leaves_out_what_is_unsupported() -> None:
    criteria = read_criteria(
        [("status", "ready"), ("_sort", "date"), ("status:exact", "x"), ("owner", "o")],
        TASK,
        strict=False,
    )
    assert criteria.applied == (("status", "ready"),)
    assert criteria.ignored == ("_sort", "status:exact", "owner")


def test_strict_handling_names_each_refused_parameter() -> None:
    with pytest.raises(Unreadable) as refused:
        read_criteria([("_sort", "date"), ("subject:Group", "g")], TASK, strict=True)
    assert [issue.expression for issue in refused.value.issues] == [("_sort",), ("subject:Group",)]
    assert all(issue.code == "not-supported" for issue in refused.value.issues)


def test_paging_defaults_caps_and_refuses_garbage() -> None:
    assert read_criteria([], TASK, strict=True).count == 20
    assert read_criteria([("_count", "500")], TASK, strict=True).count == 100
    assert read_criteria([("_offset", "40")], TASK, strict=True).offset == 40
    with pytest.raises(Unreadable):
        read_criteria([("_count", "-1")], TASK, strict=False)


def test_a_bad_date_is_refused_even_when_lenient() -> None:
    with pytest.raises(Unreadable):
        read_criteria([("_lastUpdated", "ge-soon")], TASK, strict=False)


@pytest.mark.parametrize(
    ("advertised", "applied"),
    [
        (search_parameters.SERVICE_REQUEST, search_sql.SERVICE_REQUEST),
        (search_parameters.TASK, search_sql.TASK),
        (search_parameters.APPOINTMENT, search_sql.APPOINTMENT),
        (search_parameters.AUDIT_EVENT, search_sql.AUDIT_EVENT),
        (search_parameters.pushed(("patient", "subject")), search_sql.stored("Condition")),
    ],
)
def test_every_advertised_parameter_has_its_condition(advertised, applied) -> None:
    assert set(advertised) == set(applied)


def test_a_capability_entry_documents_modifiers_and_prefixes() -> None:
    listed = {p["name"]: p for p in search_parameters.capability_params(TASK)}
    assert ":not" in listed["status"]["documentation"]
    assert "sa eb ap" in listed["_lastUpdated"]["documentation"]
    assert listed["_count"]["type"] == "number"


def test_the_implicit_range_is_half_open() -> None:
    read = read_date("date", "2026-12-02T10:15:30Z")
    assert read.high - read.low == timedelta(seconds=1)
    assert not interval(read, NOW).holds(read.high)
