"""The console's SVG geometry and queue order: pure functions, no I/O."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from referral_service.api.console import chart
from referral_service.services.staff.console import QueueItem, urgency_order


def test_stacked_bars_are_proportional_and_titled() -> None:
    day = date(2026, 11, 1)
    per_day = [(day, Counter(eligible=2, ineligible=1)), (day + timedelta(days=1), Counter())]
    bars, ticks, tallest = chart.decision_bars(per_day, ("eligible", "ineligible"))
    assert tallest == 3
    eligible, ineligible = bars
    plot = chart.PLOT_BOTTOM - chart.PLOT_TOP
    assert eligible.height == 2 * plot / 3 and ineligible.height == plot / 3
    assert eligible.y + eligible.height == chart.PLOT_BOTTOM  # first decision sits on the axis
    assert ineligible.y + ineligible.height == eligible.y  # the next stacks on top
    assert eligible.title == "2026-11-01: 2 eligible"
    assert [t.label for t in ticks] == ["11-01", "11-02"]


def test_an_empty_month_draws_no_bars_and_never_divides_by_zero() -> None:
    per_day = [(date(2026, 11, 1) + timedelta(days=n), Counter()) for n in range(30)]
    bars, ticks, tallest = chart.decision_bars(per_day, ("eligible",))
    assert bars == [] and tallest == 1
    assert len(ticks) == 7  # every fifth day and the last


def test_timeline_places_an_infusion_by_its_minutes_from_opening() -> None:
    opens = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    closes = opens + timedelta(hours=10)
    ticks, per_minute = chart.timeline_scale(opens, closes)
    assert [t.label for t in ticks][:2] == ["08:00", "09:00"] and len(ticks) == 11
    block = chart.timeline_block(
        opens + timedelta(hours=3), opens + timedelta(hours=5), opens, per_minute, "dhe", "r1"
    )
    usable = chart.TIMELINE_WIDTH - chart.LABEL_WIDTH - chart.TIMELINE_RIGHT
    assert block.x == chart.LABEL_WIDTH + usable * 0.3
    assert block.width == usable * 0.2
    assert block.title == "11:00-13:00 dhe, 120 minutes"


def test_queue_order_is_most_urgent_then_newest() -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    items = [
        QueueItem("old-routine", "routine", "needs-review", "", at),
        QueueItem("new-routine", "routine", "needs-review", "", at + timedelta(hours=1)),
        QueueItem("stat", "stat", "needs-review", "", at - timedelta(days=1)),
        QueueItem("urgent", "urgent", "needs-review", "", at),
    ]
    ordered = [i.referral_id for i in sorted(items, key=urgency_order)]
    assert ordered == ["stat", "urgent", "new-routine", "old-routine"]
