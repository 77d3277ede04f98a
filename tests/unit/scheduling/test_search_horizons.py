"""EHR Slot searches widen from the window's first day: each horizon holds every candidate that
starts before it ends, so the first horizon with a free run gives the window's earliest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from referral_service.domain.scheduling.window import BookingWindow, search_horizons

OPENS = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)


def test_a_fortnight_is_searched_in_three_widening_steps() -> None:
    window = BookingWindow(OPENS, OPENS + timedelta(days=14))
    horizons = list(search_horizons(window, TWO_HOURS))
    assert [h.closes - OPENS for h in horizons] == [
        timedelta(days=1) + TWO_HOURS,
        timedelta(days=3) + TWO_HOURS,
        timedelta(days=14),
    ]
    assert all(h.opens == OPENS for h in horizons)


def test_a_one_day_window_is_searched_once_whole() -> None:
    window = BookingWindow(OPENS, OPENS + timedelta(days=1))
    assert list(search_horizons(window, TWO_HOURS)) == [window]


def test_a_three_day_window_stops_at_its_end() -> None:
    window = BookingWindow(OPENS, OPENS + timedelta(days=3))
    horizons = list(search_horizons(window, TWO_HOURS))
    assert horizons[-1] == window and len(horizons) == 2


def test_an_empty_window_is_not_searched() -> None:
    assert list(search_horizons(BookingWindow(OPENS, OPENS), TWO_HOURS)) == []


def test_every_run_starting_before_a_horizon_ends_fits_inside_it() -> None:
    window = BookingWindow(OPENS, OPENS + timedelta(days=14))
    first = next(search_horizons(window, TWO_HOURS))
    latest_start = OPENS + timedelta(days=1)
    assert first.holds(latest_start, latest_start + TWO_HOURS)
