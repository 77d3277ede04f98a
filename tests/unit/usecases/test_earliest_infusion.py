"""The earliest infusion a draft referral would get if signed now, on a fake schedule look: the
planner's first day for the whole course, and no date when the schedule is slow or unreadable."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from referral_service.domain.scheduling.clinic import Protocol, load_clinic
from referral_service.domain.scheduling.rules import Visit
from referral_service.domain.scheduling.slots import Candidate
from referral_service.services.booking.earliest import EarliestInfusion, earliest_infusion

NY = ZoneInfo("America/New_York")
CLINIC = load_clinic(None)
MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=NY)  # lead time 2 h: room from 14:00 today


class FakeLook:
    def __init__(
        self,
        booked: list[Visit] | None = None,
        offered: list[Candidate] | None = None,
        *,
        sleep: float = 0.0,
        error: Exception | None = None,
    ) -> None:
        self.booked, self.offered, self.sleep, self.error = booked or [], offered, sleep, error
        self.asked: list[tuple[datetime, datetime, str]] = []
        self.released = threading.Event()

    def look(
        self, start: datetime, end: datetime, protocol: Protocol
    ) -> tuple[list[Visit], list[Candidate] | None]:
        self.asked.append((start, end, protocol.name))
        if self.sleep:
            self.released.wait(self.sleep)
        if self.error is not None:
            raise self.error
        return self.booked, self.offered


def _earliest(look: FakeLook, protocol: str, priority: str = "routine", seconds: float = 2.0):
    return earliest_infusion(look, CLINIC, protocol, priority, None, MONDAY_NOON, seconds)


def test_an_empty_clinic_gives_today_and_reads_the_window_and_the_series_reach() -> None:
    look = FakeLook()
    found = _earliest(look, "standard-infusion")
    assert found == EarliestInfusion(date(2026, 12, 7), "standard-infusion", 1, "routine")
    [(start, end, protocol)] = look.asked
    assert protocol == "standard-infusion"
    assert start <= MONDAY_NOON + timedelta(hours=2) and end >= MONDAY_NOON + timedelta(days=14)


def test_a_full_afternoon_moves_the_date_to_the_next_day() -> None:
    booked = [
        Visit.of(CLINIC, "standard-infusion", f"chair-{c}", datetime(2026, 12, 7, h, tzinfo=NY))
        for c in range(1, 5)
        for h in (14, 16)
    ]
    found = _earliest(FakeLook(booked), "standard-infusion")
    assert found is not None and found.day == date(2026, 12, 8)


def test_a_dhe_series_needs_every_visit_to_fit() -> None:
    """Friday would start it, but Saturday (1 nurse, 09:00-13:00) is full: it starts Monday."""
    friday_morning = datetime(2026, 12, 11, 8, 0, tzinfo=NY)
    saturday = [
        Visit.of(CLINIC, "standard-infusion", f"chair-{c}", datetime(2026, 12, 12, h, tzinfo=NY))
        for c, h in ((1, 9), (2, 11), (3, 10))
    ]
    found = earliest_infusion(
        FakeLook(saturday), CLINIC, "dhe", "routine", None, friday_morning, 2.0
    )
    assert found is not None
    assert found.day == date(2026, 12, 14)
    assert found.words() == "Earliest infusion if signed now: Mon 14 Dec (DHE, 3 visits, routine)"


def test_ehr_offers_limit_the_date_to_what_is_on_offer() -> None:
    offer = Candidate(
        "sched-1",
        datetime(2026, 12, 9, 10, tzinfo=NY),
        datetime(2026, 12, 9, 12, tzinfo=NY),
        ("s",),
    )
    found = _earliest(FakeLook(offered=[offer]), "standard-infusion")
    assert found is not None and found.day == date(2026, 12, 9)
    assert found.words().endswith("Wed 9 Dec (standard infusion, 1 visit, routine)")


@pytest.mark.serial  # wall-clock bound: `make test` runs it alone, after the parallel tests
def test_a_schedule_slower_than_the_budget_gives_no_date_without_waiting() -> None:
    look = FakeLook(sleep=5.0)
    started = time.monotonic()
    assert _earliest(look, "standard-infusion", seconds=0.2) is None
    assert time.monotonic() - started < 1.5
    look.released.set()


def test_no_budget_left_reads_nothing() -> None:
    look = FakeLook()
    assert _earliest(look, "standard-infusion", seconds=0.0) is None
    assert look.asked == []


def test_an_unreadable_schedule_an_unknown_protocol_or_a_full_window_give_no_date() -> None:
    assert _earliest(FakeLook(error=RuntimeError("EHR down")), "standard-infusion") is None
    assert _earliest(FakeLook(), "no-such-protocol") is None
    assert _earliest(FakeLook(offered=[]), "standard-infusion") is None


def test_the_draft_orders_occurrence_moves_the_date() -> None:
    from referral_service.fhir.occurrence import requested_occurrence

    order = {"occurrencePeriod": {"start": "2026-12-10", "end": "2026-12-18"}}
    occurrence = requested_occurrence(order, NY)
    found = earliest_infusion(
        FakeLook(), CLINIC, "standard-infusion", "routine", None, MONDAY_NOON, 2.0, occurrence
    )
    assert found is not None and found.day == date(2026, 12, 10)
    never = requested_occurrence({"occurrencePeriod": {"end": "2026-12-01"}}, NY)
    assert (
        earliest_infusion(
            FakeLook(), CLINIC, "standard-infusion", "routine", None, MONDAY_NOON, 2.0, never
        )
        is None
    )
