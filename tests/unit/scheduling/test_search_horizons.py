"""EHR Slot searches go through the window in consecutive stretches from its first day: each
stretch holds every run that starts in it, so the first stretch with a free run gives the
window's earliest, and no stretch fetches the Slots of the stretches before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from referral_service.domain.scheduling.window import BookingWindow, search_horizons

OPENS = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)
DAY = timedelta(days=1)


def test_a_fortnight_is_searched_in_four_consecutive_stretches() -> None:
    window = BookingWindow(OPENS, OPENS + 14 * DAY)
    horizons = list(search_horizons(window, TWO_HOURS))
    assert [(h.opens - OPENS, h.closes - OPENS) for h in horizons] == [
        (timedelta(0), DAY + TWO_HOURS),
        (DAY, 3 * DAY + TWO_HOURS),
        (3 * DAY, 7 * DAY + TWO_HOURS),
        (7 * DAY, 14 * DAY),
    ]


def test_a_one_day_window_is_searched_once_whole() -> None:
    window = BookingWindow(OPENS, OPENS + DAY)
    assert list(search_horizons(window, TWO_HOURS)) == [window]


def test_a_three_day_window_stops_at_its_end() -> None:
    window = BookingWindow(OPENS, OPENS + 3 * DAY)
    horizons = list(search_horizons(window, TWO_HOURS))
    assert len(horizons) == 2
    assert horizons[-1] == BookingWindow(OPENS + DAY, window.closes)


def test_an_empty_window_is_not_searched() -> None:
    assert list(search_horizons(BookingWindow(OPENS, OPENS), TWO_HOURS)) == []


def test_an_earlier_run_is_never_first_held_by_a_later_stretch() -> None:
    """So the earliest run of the first stretch that has any is the window's earliest."""
    window = BookingWindow(OPENS, OPENS + 14 * DAY)
    horizons = list(search_horizons(window, TWO_HOURS))
    first_holders = []
    start = OPENS
    while start + TWO_HOURS <= window.closes:
        holding = [i for i, h in enumerate(horizons) if h.holds(start, start + TWO_HOURS)]
        assert holding, f"a run at {start} is in no stretch"
        first_holders.append(holding[0])
        start += timedelta(minutes=15)
    assert first_holders == sorted(first_holders)
    assert set(first_holders) == set(range(len(horizons)))


def test_stretches_never_go_back_before_the_previous_one_ends_its_own_days() -> None:
    window = BookingWindow(OPENS, OPENS + 30 * DAY)
    horizons = list(search_horizons(window, TWO_HOURS))
    for earlier, later in zip(horizons, horizons[1:], strict=False):
        assert earlier.opens < later.opens
        assert later.opens == earlier.closes - TWO_HOURS  # overlap: one duration, no more
    assert horizons[0].opens == window.opens and horizons[-1].closes == window.closes
