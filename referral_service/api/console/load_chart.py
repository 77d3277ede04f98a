"""Geometry for the chair day's load chart, drawn under the chair Gantt on the same time axis:
patients in chairs (the census) and nurse hands-on phases (starts and ends) in each clinic cell,
against what the nurses on duty allow (nurses x patients per nurse; nurses). Pure: numbers in,
shapes out; the template draws them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from referral_service.domain.scheduling.clinic import Clinic, ClinicError
from referral_service.domain.scheduling.rules import Visit, nurses_on_duty

from .chart import LABEL_WIDTH

LOAD_HEIGHT = 120
LOAD_TOP = 8
LOAD_BOTTOM = 104


@dataclass(frozen=True)
class LoadStep:
    x: float
    width: float
    census_y: float  # top of the census bar
    phases_y: float  # top of the nurse-phase bar
    census: int
    phases: int
    title: str


@dataclass(frozen=True)
class LoadChart:
    steps: list[LoadStep]
    capacity_points: str  # polyline: nurses x patients per nurse
    nurses_points: str  # polyline: nurses on duty (at most this many phases at once)
    tallest: int
    peak_census: int
    peak_phases: int


def _visits(clinic: Clinic, infusions: Iterable[object]) -> list[Visit]:
    out = []
    for i in infusions:
        chair, protocol, start = i.chair_id, i.protocol, i.start  # type: ignore[attr-defined]
        try:
            out.append(Visit.of(clinic, protocol, chair, start))
        except ClinicError:
            out.append(Visit(start, i.end, chair))  # type: ignore[attr-defined]
    return out


def load_chart(
    clinic: Clinic,
    infusions: Iterable[object],
    opens: datetime,
    closes: datetime,
    per_minute: float,
) -> LoadChart:
    """One step per clinic cell from opening to closing."""
    visits = _visits(clinic, infusions)
    ratio = clinic.staffing.patients_per_nurse if clinic.staffing is not None else None
    cells: list[tuple[datetime, int, int, int | None]] = []
    at = opens
    while at < closes:
        middle = at + clinic.cell / 2
        census = sum(1 for v in visits if v.start <= middle < v.end)
        phases = sum(1 for v in visits for s, e in v.nurse_phases() if s <= middle < e)
        cells.append((at, census, phases, nurses_on_duty(clinic, middle)))
        at += clinic.cell
    capacity = [(n or 0) * ratio for *_, n in cells] if ratio is not None else []
    tallest = max([1, *(c for _, c, _, _ in cells), *capacity])
    scale = (LOAD_BOTTOM - LOAD_TOP) / tallest
    width = clinic.cell.total_seconds() / 60 * per_minute
    steps, capacity_line, nurses_line = [], [], []
    for index, (start, census, phases, nurses) in enumerate(cells):
        x = LABEL_WIDTH + (start - opens).total_seconds() / 60 * per_minute
        title = f"{start:%H:%M}: {census} in chairs, {phases} nurse start/end phases"
        if nurses is not None:
            title += f", {nurses} nurse(s) on duty"
        steps.append(
            LoadStep(
                x,
                width,
                LOAD_BOTTOM - census * scale,
                LOAD_BOTTOM - phases * scale,
                census,
                phases,
                title,
            )
        )
        if ratio is not None:
            y_cap = LOAD_BOTTOM - capacity[index] * scale
            y_nurses = LOAD_BOTTOM - (nurses or 0) * scale
            capacity_line += [f"{x:.1f},{y_cap:.1f}", f"{x + width:.1f},{y_cap:.1f}"]
            nurses_line += [f"{x:.1f},{y_nurses:.1f}", f"{x + width:.1f},{y_nurses:.1f}"]
    return LoadChart(
        steps,
        " ".join(capacity_line),
        " ".join(nurses_line),
        tallest,
        max((c for _, c, _, _ in cells), default=0),
        max((p for _, _, p, _ in cells), default=0),
    )
