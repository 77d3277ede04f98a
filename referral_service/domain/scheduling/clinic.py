"""The clinic model: chairs, hours, closures, nurses, protocols and booking windows, from YAML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from .nursing import (
    WEEKDAYS,
    ClockTime,
    Course,
    CourseFields,
    Staffing,
    StaffingSchema,
    course_of,
)

PRIORITIES = ("routine", "urgent", "asap", "stat")
DEFAULT_PROTOCOLS: dict[str, dict[str, Any]] = {
    "standard-infusion": {
        "minutes": 120,
        "drugs": [
            "iv-fluids",
            "metoclopramide",
            "diphenhydramine",
            "magnesium-sulfate",
            "ketorolac",
            "dexamethasone",
        ],
    },
    # Outpatient repetitive IV DHE: commonly 3 consecutive days; the label allows no more than
    # 6 mg IV a week.
    "dhe": {
        "minutes": 120,
        "drugs": ["dhe", "metoclopramide"],
        "series": {"visits": 3, "spacing": "consecutive-open-days"},
        "dosing": {"mg_per_visit": 1, "max_mg_per_week": 6},
    },
    # Eptinezumab (Vyepti) is given every 12 weeks.
    "eptinezumab": {
        "minutes": 60,
        "drugs": ["eptinezumab"],
        "repeat": {"every_days": 84, "tolerance_days": 7},
    },
}
DEFAULT_WINDOW_DAYS = {"stat": 1, "asap": 1, "urgent": 3, "routine": 14}


class ClinicError(ValueError):
    """The clinic file is unreadable or invalid; the message names the offending key."""


@dataclass(frozen=True)
class Chair:
    id: str
    name: str


@dataclass(frozen=True)
class OpeningHours:
    opens: time
    closes: time


@dataclass(frozen=True)
class Protocol:
    name: str
    minutes: int
    drugs: tuple[str, ...]
    course: Course = Course()

    @cached_property  # read for every candidate a plan weighs
    def duration(self) -> timedelta:
        return timedelta(minutes=self.minutes)


@dataclass(frozen=True)
class Clinic:
    name: str
    time_zone: str
    chairs: tuple[Chair, ...]
    opening_hours: dict[int, OpeningHours]  # weekday (Monday 0) -> hours; absent = closed
    closures: frozenset[date]
    cell_minutes: int
    min_lead_time: timedelta
    protocols: dict[str, Protocol]
    window_days: dict[str, int]
    staffing: Staffing | None = None  # None: nurses are not modelled (chairs alone limit)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def cell(self) -> timedelta:
        return timedelta(minutes=self.cell_minutes)

    def protocol(self, name: str) -> Protocol:
        try:
            return self.protocols[name]
        except KeyError:
            raise ClinicError(f"protocols: the clinic has no protocol {name!r}") from None

    def opening_on(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening as aware UTC instants, or None when closed.

        Wall-clock times are built in the clinic's zone first and only then converted, so a
        DST change moves the UTC instants, never the local opening hours.
        """
        hours = self.opening_hours.get(day.weekday())
        if hours is None or day in self.closures:
            return None
        opens = datetime.combine(day, hours.opens, tzinfo=self.zone)
        closes = datetime.combine(day, hours.closes, tzinfo=self.zone)
        return opens.astimezone(UTC), closes.astimezone(UTC)


class _Day(fields.Field):
    """A calendar date, as YAML gives it (a date) or as an ISO string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(f"must be a YYYY-MM-DD date, got {value!r}") from None


def _check_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone") from None


class _ChairSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    name = fields.String(required=True)


class _HoursSchema(Schema):
    open = ClockTime(required=True)
    close = ClockTime(required=True)


class _ProtocolSchema(CourseFields):
    minutes = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=24 * 60)
    )
    drugs = fields.List(fields.String(), load_default=list)


class _ClinicSchema(Schema):
    name = fields.String(load_default="Infusion clinic")
    time_zone = fields.String(required=True, validate=_check_zone)
    cell_minutes = fields.Integer(
        load_default=15, strict=True, validate=validate.OneOf([5, 10, 15, 20, 30, 60])
    )
    min_lead_minutes = fields.Integer(load_default=120, strict=True, validate=validate.Range(min=0))
    chairs = fields.List(
        fields.Nested(_ChairSchema), required=True, validate=validate.Length(min=1)
    )
    opening_hours = fields.Dict(
        keys=fields.String(validate=validate.OneOf(WEEKDAYS)),
        values=fields.Nested(_HoursSchema),
        required=True,
    )
    closures = fields.List(_Day(), load_default=list)
    protocols = fields.Dict(keys=fields.String(), values=fields.Nested(_ProtocolSchema))
    window_days = fields.Dict(
        keys=fields.String(validate=validate.OneOf(PRIORITIES)),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=365)),
        load_default=DEFAULT_WINDOW_DAYS,
    )
    nurses = fields.Nested(StaffingSchema, load_default=None)

    @pre_load
    def _default_protocols(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Through the schema (not load_default) so the built-in protocols get their courses.
        if isinstance(data, dict) and "protocols" not in data:
            return {**data, "protocols": DEFAULT_PROTOCOLS}
        return data

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        ids = [chair["id"] for chair in data.get("chairs", [])]
        if len(ids) != len(set(ids)):
            raise ValidationError("chair ids must be unique", "chairs")
        for day, hours in data.get("opening_hours", {}).items():
            if hours["open"] >= hours["close"]:
                raise ValidationError(f"{day}: open must be before close", "opening_hours")
        cell = data.get("cell_minutes", 15)
        for name, protocol in data.get("protocols", {}).items():
            if protocol["minutes"] % cell:
                raise ValidationError(
                    f"{name}: minutes must be a multiple of cell_minutes", "protocols"
                )
        missing = set(PRIORITIES) - set(data.get("window_days", {}))
        if missing:
            raise ValidationError(f"missing priorities {sorted(missing)}", "window_days")

    @post_load
    def _to_clinic(self, data: dict[str, Any], **kwargs: Any) -> Clinic:
        return Clinic(
            name=data["name"],
            time_zone=data["time_zone"],
            chairs=tuple(Chair(c["id"], c["name"]) for c in data["chairs"]),
            opening_hours={
                WEEKDAYS.index(day): OpeningHours(h["open"], h["close"])
                for day, h in data["opening_hours"].items()
            },
            closures=frozenset(data["closures"]),
            cell_minutes=data["cell_minutes"],
            min_lead_time=timedelta(minutes=data["min_lead_minutes"]),
            protocols={
                name: Protocol(name, p["minutes"], tuple(p["drugs"]), course_of(p))
                for name, p in data["protocols"].items()
            },
            window_days=dict(data["window_days"]),
            staffing=data["nurses"],
        )


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict -> ["opening_hours.monday.open: ...", ...]."""
    if isinstance(messages, dict):
        out: list[str] = []
        for key, value in messages.items():
            # "_schema" (whole-object errors) and "value" (marshmallow's Dict values) add noise.
            path = prefix if key in ("_schema", "value") else f"{prefix}.{key}".lstrip(".")
            out.extend(_flatten(value, path))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix}: {m}" if prefix else m for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, prefix)]
    return [f"{prefix}: {messages}"]


def clinic_from_dict(data: Any) -> Clinic:
    if not isinstance(data, dict):
        raise ClinicError("clinic file must be a YAML mapping")
    try:
        return _ClinicSchema().load(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ClinicError("invalid clinic: " + "; ".join(_flatten(exc.messages))) from exc


def load_clinic(path: str | None) -> Clinic:
    """The clinic from `path` (REFERRAL_CLINIC_FILE), or the built-in example clinic."""
    if path is None:
        text = resources.files(__package__).joinpath("clinics/example.yaml").read_text("utf-8")
        source = "built-in example clinic"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ClinicError(f"cannot read clinic file {path}: {exc.strerror}") from exc
        source = path
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClinicError(f"{source} is not valid YAML: {exc}") from exc
    return clinic_from_dict(data)
