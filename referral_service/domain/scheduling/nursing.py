"""The clinic file on nurses and treatment courses: staffing, series, repeats, dose caps."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CONSECUTIVE_OPEN_DAYS = "consecutive-open-days"
EVERY_N_DAYS = "every-n-days"
SPACINGS = (CONSECUTIVE_OPEN_DAYS, EVERY_N_DAYS)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
DEFAULT_PATIENTS_PER_NURSE = 4
# Nurse hands-on minutes when a protocol does not say: IV access and first observations take
# 15-30 minutes, removal and discharge about 15 (issue 17).
DEFAULT_NURSE_START_MINUTES = 15
DEFAULT_NURSE_END_MINUTES = 15


@dataclass(frozen=True)
class NurseBand:
    """`nurses` on duty from `starts` to `ends` (local time) on one weekday."""

    starts: time
    ends: time
    nurses: int


@dataclass(frozen=True)
class Staffing:
    """Nurses on duty by weekday and time band; None on a Clinic means nurses are not modelled."""

    bands: dict[int, tuple[NurseBand, ...]]  # weekday (Monday 0) -> bands, in order
    patients_per_nurse: int = DEFAULT_PATIENTS_PER_NURSE

    def nurses_at(self, weekday: int, at: time) -> int:
        for band in self.bands.get(weekday, ()):
            if band.starts <= at < band.ends:
                return band.nurses
        return 0


@dataclass(frozen=True)
class Series:
    """A course of `visits` infusions: on consecutive open days, or every `every_days` days."""

    visits: int = 1
    spacing: str = CONSECUTIVE_OPEN_DAYS
    every_days: int = 1

    @property
    def gap_days(self) -> int:
        """The fewest days from one visit to the next."""
        return 1 if self.spacing == CONSECUTIVE_OPEN_DAYS else self.every_days


@dataclass(frozen=True)
class Repeat:
    """The course is repeated after `every_days`, give or take `tolerance_days`; `book`: the
    repeat course (every visit of its series) is booked with the first course when its window
    has room (else recorded as due)."""

    every_days: int
    tolerance_days: int
    book: bool = False


@dataclass(frozen=True)
class Dosing:
    """Dose per visit and the label's weekly cap in mg (DHE: no more than 6 mg IV a week)."""

    mg_per_visit: float
    max_mg_per_week: float | None = None


@dataclass(frozen=True)
class Course:
    """A protocol's nurse minutes and course shape (what a Protocol carries beyond its drugs)."""

    nurse_start_minutes: int = DEFAULT_NURSE_START_MINUTES
    nurse_end_minutes: int = DEFAULT_NURSE_END_MINUTES
    series: Series = field(default_factory=Series)
    repeat: Repeat | None = None
    dosing: Dosing | None = None


def visits_in_a_week(series: Series) -> int:
    """The most visits of the series that can fall within any seven days."""
    return min(series.visits, 6 // series.gap_days + 1)


class ClockTime(fields.Field):
    """ "HH:MM" (quoted in YAML: unquoted 9:00 would be read as a base-60 integer)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if not isinstance(value, str) or not _CLOCK.match(value):
            raise ValidationError(f'must be a quoted "HH:MM" time, got {value!r}')
        return time.fromisoformat(value)


class YesNo(fields.Field):
    """true or false only (marshmallow's Boolean also takes 1, "yes", "on")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError(f"must be true or false, got {value!r}")
        return value


class _BandSchema(Schema):
    days = fields.List(
        fields.String(validate=validate.OneOf(WEEKDAYS)),
        required=True,
        validate=validate.Length(min=1),
    )
    start = ClockTime(required=True)
    end = ClockTime(required=True)
    nurses = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100))

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "start" in data and "end" in data and data["start"] >= data["end"]:
            raise ValidationError("start must be before end", "end")


class StaffingSchema(Schema):
    patients_per_nurse = fields.Integer(
        load_default=DEFAULT_PATIENTS_PER_NURSE, strict=True, validate=validate.Range(min=1, max=20)
    )
    bands = fields.List(fields.Nested(_BandSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _bands_apart(self, data: dict[str, Any], **kwargs: Any) -> None:
        by_day: dict[str, list[tuple[time, time]]] = {}
        for band in data.get("bands", []):
            for day in band["days"]:
                by_day.setdefault(day, []).append((band["start"], band["end"]))
        for day, spans in by_day.items():
            spans.sort()
            for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                if start < end:
                    raise ValidationError(f"{day}: nurse bands overlap at {start:%H:%M}", "bands")

    @post_load
    def _to_staffing(self, data: dict[str, Any], **kwargs: Any) -> Staffing:
        bands: dict[int, list[NurseBand]] = {}
        for band in data["bands"]:
            for day in band["days"]:
                bands.setdefault(WEEKDAYS.index(day), []).append(
                    NurseBand(band["start"], band["end"], band["nurses"])
                )
        return Staffing(
            bands={day: tuple(sorted(b, key=lambda n: n.starts)) for day, b in bands.items()},
            patients_per_nurse=data["patients_per_nurse"],
        )


class _SeriesSchema(Schema):
    visits = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=10))
    spacing = fields.String(load_default=CONSECUTIVE_OPEN_DAYS, validate=validate.OneOf(SPACINGS))
    every_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=365))

    @validates_schema
    def _spacing_complete(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("spacing") == EVERY_N_DAYS and "every_days" not in data:
            raise ValidationError("every-n-days spacing needs every_days", "every_days")

    @post_load
    def _to_series(self, data: dict[str, Any], **kwargs: Any) -> Series:
        return Series(data["visits"], data["spacing"], data.get("every_days", 1))


class _RepeatSchema(Schema):
    every_days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    tolerance_days = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    book = YesNo(load_default=False)

    @validates_schema
    def _tolerance_below_interval(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("tolerance_days", 0) >= data.get("every_days", 1):
            raise ValidationError("must be less than every_days", "tolerance_days")

    @post_load
    def _to_repeat(self, data: dict[str, Any], **kwargs: Any) -> Repeat:
        return Repeat(data["every_days"], data["tolerance_days"], data["book"])


class _DosingSchema(Schema):
    mg_per_visit = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False))
    max_mg_per_week = fields.Float(validate=validate.Range(min=0, min_inclusive=False))

    @post_load
    def _to_dosing(self, data: dict[str, Any], **kwargs: Any) -> Dosing:
        return Dosing(data["mg_per_visit"], data.get("max_mg_per_week"))


class CourseFields(Schema):
    """A protocol's course keys; the clinic's protocol schema extends this."""

    nurse_start_minutes = fields.Integer(
        load_default=DEFAULT_NURSE_START_MINUTES, strict=True, validate=validate.Range(min=0)
    )
    nurse_end_minutes = fields.Integer(
        load_default=DEFAULT_NURSE_END_MINUTES, strict=True, validate=validate.Range(min=0)
    )
    series = fields.Nested(_SeriesSchema, load_default=lambda: Series())
    repeat = fields.Nested(_RepeatSchema, load_default=None)
    dosing = fields.Nested(_DosingSchema, load_default=None)

    @validates_schema
    def _course_consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        hands_on = data.get("nurse_start_minutes", 0) + data.get("nurse_end_minutes", 0)
        if "minutes" in data and hands_on > data["minutes"]:
            raise ValidationError(
                f"nurse start and end minutes ({hands_on}) exceed the infusion's "
                f"{data['minutes']} minutes",
                "nurse_start_minutes",
            )
        dosing, series = data.get("dosing"), data.get("series")
        repeat = data.get("repeat")
        if repeat and repeat.book and series and series.visits > 1:
            span = (series.visits - 1) * series.gap_days
            soonest = repeat.every_days - repeat.tolerance_days
            if soonest <= span:
                raise ValidationError(
                    f"book: true: the repeat can fall due {soonest} days after the first "
                    f"visit, before the {series.visits}-visit course ends ({span} days at least)",
                    "repeat",
                )
        if dosing and dosing.max_mg_per_week and series:
            weekly = visits_in_a_week(series) * dosing.mg_per_visit
            if weekly > dosing.max_mg_per_week:
                raise ValidationError(
                    f"{visits_in_a_week(series)} visits of {dosing.mg_per_visit:g} mg within a "
                    f"week give {weekly:g} mg, above the {dosing.max_mg_per_week:g} mg weekly cap",
                    "dosing",
                )


def course_of(data: dict[str, Any]) -> Course:
    return Course(
        nurse_start_minutes=data["nurse_start_minutes"],
        nurse_end_minutes=data["nurse_end_minutes"],
        series=data["series"],
        repeat=data["repeat"],
        dosing=data["dosing"],
    )
