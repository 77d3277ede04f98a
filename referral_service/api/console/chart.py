"""Geometry for the console's server-side SVG: stacked bars of decisions per day, and each
chair's day as a timeline. Pure functions: numbers in, shapes out; templates draw them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

CHART_WIDTH = 720
CHART_HEIGHT = 220
PLOT_TOP = 10
PLOT_BOTTOM = 190
PLOT_LEFT = 40
PLOT_RIGHT = 24  # room for the last day's label
TIMELINE_WIDTH = 1000
ROW_HEIGHT = 56
LABEL_WIDTH = 150
TIMELINE_RIGHT = 30  # room for the closing hour's label


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css_class: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


def decision_bars(
    per_day: list[tuple[date, Counter[str]]], order: tuple[str, ...]
) -> tuple[list[Bar], list[Tick], int]:
    """One stacked bar a day, decisions in `order` from the bottom; returns bars, day ticks
    (every 5th day, so labels never overlap) and the tallest day's count."""
    tallest = max((sum(c.values()) for _, c in per_day), default=0) or 1
    slot = (CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT) / max(len(per_day), 1)
    scale = (PLOT_BOTTOM - PLOT_TOP) / tallest
    bars: list[Bar] = []
    ticks: list[Tick] = []
    for index, (day, counts) in enumerate(per_day):
        x = PLOT_LEFT + index * slot
        top = float(PLOT_BOTTOM)
        for decision in (*order, *sorted(set(counts) - set(order))):
            if counts.get(decision):
                height = counts[decision] * scale
                top -= height
                title = f"{day.isoformat()}: {counts[decision]} {decision}"
                bars.append(Bar(x + 1, top, slot - 2, height, f"d-{decision}", title))
        if index % 5 == 0 or index == len(per_day) - 1:
            ticks.append(Tick(x + slot / 2, PLOT_BOTTOM + 16, f"{day:%m-%d}"))
    return bars, ticks, tallest


@dataclass(frozen=True)
class Block:
    x: float
    width: float
    label: str  # the protocol, first line
    duration: str  # second line, so neither overflows a two-hour block
    title: str
    referral_id: str


def timeline_scale(opens: datetime, closes: datetime) -> tuple[list[Tick], float]:
    """Hour marks across the day, and the width of one minute in timeline units."""
    span = max((closes - opens).total_seconds() / 60, 1)
    per_minute = (TIMELINE_WIDTH - LABEL_WIDTH - TIMELINE_RIGHT) / span
    ticks = []
    hour = opens.replace(minute=0, second=0, microsecond=0)
    if hour < opens:
        hour += timedelta(hours=1)
    while hour <= closes:
        minutes = (hour - opens).total_seconds() / 60
        ticks.append(Tick(LABEL_WIDTH + minutes * per_minute, 14, f"{hour:%H:%M}"))
        hour += timedelta(hours=1)
    return ticks, per_minute


def timeline_block(
    start: datetime, end: datetime, opens: datetime, per_minute: float, protocol: str, ref: str
) -> Block:
    offset = max((start - opens).total_seconds() / 60, 0)
    minutes = (end - start).total_seconds() / 60
    span = f"{start:%H:%M}-{end:%H:%M}"
    return Block(
        LABEL_WIDTH + offset * per_minute,
        max(minutes * per_minute, 4),
        protocol,
        f"{int(minutes)} min",
        f"{span} {protocol}, {int(minutes)} minutes",
        ref,
    )
