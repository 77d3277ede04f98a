"""ServiceRequest.occurrence[x] read into the planner's Occurrence (fhir/occurrence.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_service.domain.scheduling.planner import Occurrence
from referral_service.fhir.occurrence import requested_occurrence

ZONE = ZoneInfo("Europe/London")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZONE)  # type: ignore[misc]


def test_a_period_of_days_bounds_every_visit_through_its_last_day() -> None:
    found = requested_occurrence(
        {"occurrencePeriod": {"start": "2026-12-07", "end": "2026-12-11"}}, ZONE
    )
    assert found == Occurrence(local(2026, 12, 7), local(2026, 12, 12))
    assert found.holds(local(2026, 12, 11, 15), local(2026, 12, 11, 17), first=False)
    assert not found.holds(local(2026, 12, 12, 9), local(2026, 12, 12, 11), first=False)
    assert not found.holds(local(2026, 12, 6, 9), local(2026, 12, 6, 11), first=True)


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ({"start": "2026-12-07"}, Occurrence(local(2026, 12, 7), None)),
        ({"end": "2026-12-11"}, Occurrence(None, local(2026, 12, 12))),
        ({"start": "2026-12", "end": "2027"}, Occurrence(local(2026, 12, 1), local(2028, 1, 1))),
        ({"start": "2026", "end": "2026-12"}, Occurrence(local(2026, 1, 1), local(2027, 1, 1))),
        ({"end": "2026-11"}, Occurrence(None, local(2026, 12, 1))),
    ],
)
def test_a_period_with_one_side_or_partial_dates(period: dict, expected: Occurrence) -> None:
    assert requested_occurrence({"occurrencePeriod": period}, ZONE) == expected


def test_date_times_keep_their_offset_and_without_one_are_read_in_the_clinics_zone() -> None:
    found = requested_occurrence(
        {"occurrencePeriod": {"start": "2026-07-07T09:00:00", "end": "2026-07-09T12:00:00Z"}},
        ZONE,
    )
    assert found.opens == local(2026, 7, 7, 9)  # BST: 08:00 UTC
    assert found.opens.astimezone(UTC).hour == 8
    assert found.closes == datetime(2026, 7, 9, 12, tzinfo=UTC)


def test_an_occurrence_date_fixes_only_the_first_visits_day() -> None:
    found = requested_occurrence({"occurrenceDateTime": "2026-12-08"}, ZONE)
    assert found == Occurrence.on_day(local(2026, 12, 8).date(), ZONE)
    assert found.holds(local(2026, 12, 8, 9), local(2026, 12, 8, 11), first=True)
    assert not found.holds(local(2026, 12, 9, 9), local(2026, 12, 9, 11), first=True)
    assert found.holds(local(2026, 12, 9, 9), local(2026, 12, 9, 11), first=False)


def test_an_occurrence_date_time_is_its_local_day_and_a_partial_one_its_month() -> None:
    # 23:30 UTC on 7 July is 00:30 on 8 July in London: the clinic's day is the 8th.
    at = requested_occurrence({"occurrenceDateTime": "2026-07-07T23:30:00Z"}, ZONE)
    assert at == Occurrence.on_day(local(2026, 7, 8).date(), ZONE)
    naive = requested_occurrence({"occurrenceDateTime": "2026-07-07T23:30:00"}, ZONE)
    assert naive == Occurrence.on_day(local(2026, 7, 7).date(), ZONE)
    month = requested_occurrence({"occurrenceDateTime": "2026-12"}, ZONE)
    assert month == Occurrence(local(2026, 12, 1), local(2027, 1, 1), first_visit_only=True)
    assert month.closes - month.opens == timedelta(days=31)


@pytest.mark.parametrize(
    "resource",
    [
        {},
        {"occurrenceTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}},
        {"occurrenceDateTime": "next tuesday"},
        {"occurrenceDateTime": "2026-13"},
        {"occurrencePeriod": "2026-12-07"},
    ],
)
def test_no_occurrence_a_timing_or_an_unreadable_value_constrains_nothing(resource: dict) -> None:
    assert requested_occurrence(resource, ZONE) == Occurrence()
