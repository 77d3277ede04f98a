"""The booking window (clinical-criteria.md section 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from referral_service.domain.scheduling.clinic import load_clinic
from referral_service.domain.scheduling.window import NaiveTimeError, booking_window

CLINIC = load_clinic(None)
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("priority", "days"), [("stat", 1), ("asap", 1), ("urgent", 3), ("routine", 14)]
)
def test_closes_window_days_after_receipt_not_after_now(priority: str, days: int) -> None:
    now = RECEIVED + timedelta(hours=5)  # a retry, later than receipt
    window = booking_window(priority, RECEIVED, now, None, CLINIC)
    assert window.closes == RECEIVED + timedelta(days=days)
    assert window.opens == now + timedelta(hours=2)


def test_earliest_start_later_than_lead_time_wins() -> None:
    earliest = RECEIVED + timedelta(hours=30)
    window = booking_window("routine", RECEIVED, RECEIVED, earliest, CLINIC)
    assert window.opens == earliest


def test_earliest_start_in_the_past_does_not_shorten_the_lead_time() -> None:
    window = booking_window("routine", RECEIVED, RECEIVED, RECEIVED - timedelta(days=1), CLINIC)
    assert window.opens == RECEIVED + timedelta(hours=2)


def test_window_can_be_empty() -> None:
    now = RECEIVED + timedelta(hours=23)
    window = booking_window("stat", RECEIVED, now, None, CLINIC)
    assert window.is_empty


def test_naive_times_are_rejected() -> None:
    with pytest.raises(NaiveTimeError, match="received_at"):
        booking_window("routine", RECEIVED.replace(tzinfo=None), RECEIVED, None, CLINIC)
    with pytest.raises(NaiveTimeError, match="earliest_start"):
        booking_window("routine", RECEIVED, RECEIVED, datetime(2026, 3, 3, 9), CLINIC)


def test_unknown_priority() -> None:
    with pytest.raises(ValueError, match="priority"):
        booking_window("whenever", RECEIVED, RECEIVED, None, CLINIC)
