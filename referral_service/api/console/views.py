"""The staff console's pages and forms (`/console`). Every action calls the same service
functions as the staff JSON API, so the console can do nothing the API could not."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from referral_service.api.console import access, chart, trail
from referral_service.api.console.load_chart import LOAD_HEIGHT, load_chart
from referral_service.api.fhir_io import fhir_response, runtime
from referral_service.domain.errors import DomainError
from referral_service.fhir.outcome import (
    FhirError,
    Issue,
    Unprocessable,
    as_fhir_error,
    operation_outcome,
)
from referral_service.services.staff import console
from referral_service.services.staff import review as staff

console_bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

MAX_NOTE = 2000
# What a finished action says on the next page; only these fixed texts are ever shown.
DONE_MESSAGES = {
    "approved": "Approved: the referral is queued for booking.",
    "declined": "Declined: the referrer sees the referral as not eligible.",
    "retried": "Booking retried: the worker will look for a chair again.",
    "cancelling": "Cancellation requested: the chair is freed shortly.",
}
REVIEW_ACTIONS = {"approve": "approved", "decline": "declined"}
FAILED_BOOKINGS = console.LANES["failed-booking"]


@console_bp.before_request
def _guard() -> None:
    access.check_access(runtime().settings.auth)
    access.check_csrf()


@console_bp.after_request
def _finish(response: Response) -> Response:
    trail.record_action(response)
    return access.keep_csrf_cookie(response)


@console_bp.app_template_global()
def csrf_token() -> str:
    return access.csrf_token()


@console_bp.errorhandler(DomainError)
def _refusal_page(exc: DomainError) -> Any:
    return _error_page(as_fhir_error(exc))


@console_bp.errorhandler(FhirError)
def _error_page(exc: FhirError) -> Any:
    if not request.accept_mimetypes.accept_html:
        # API clients (and scripts) get the usual OperationOutcome.
        return fhir_response(operation_outcome(exc.issues), exc.status, exc.headers)
    return render_template("console/error.html", error=exc), exc.status


@console_bp.get("/")
def queue() -> str:
    lane = _choice("lane", tuple(console.LANES))
    priority = _choice("priority", tuple(console.PRIORITY_RANK))
    work = console.work_queue(runtime(), lane=lane, priority=priority)
    return render_template(
        "console/queue.html",
        work=work,
        decided=console.recently_decided(runtime()),
        lane=lane,
        priority=priority,
        lanes=console.LANES,
        priorities=console.PRIORITY_RANK,
        clinic=runtime().clinic,
        names={c.id: c.name for c in runtime().clinic.chairs},
    )


@console_bp.get("/referrals/<referral_id>")
def referral(referral_id: str) -> str:
    detail = staff.referral_detail(runtime(), referral_id)
    story = console.referral_story(runtime(), referral_id)
    task = detail["task"] or {}
    business = ((task.get("businessStatus") or {}).get("coding") or [{}])[0].get("code", "")
    appointment = detail["appointment"]
    return render_template(
        "console/referral.html",
        detail=detail,
        story=story,
        business=business,
        may_review=business == "needs-review",
        may_retry=business in FAILED_BOOKINGS,
        may_cancel=bool(appointment) and appointment.get("status") == "booked",
        visit=_local_visit(appointment),
        done=DONE_MESSAGES.get(request.args.get("done", "")),
        form_link=_form_link(task),
    )


def _form_link(task: dict) -> str | None:
    """The web form's link the Task carries for the referrer (issue 19), if any."""
    for item in task.get("input") or []:
        for ext in item.get("extension") or []:
            if str(ext.get("url", "")).endswith("/form-link"):
                return str(ext.get("valueUrl"))
    return None


@console_bp.post("/referrals/<referral_id>/review")
def review(referral_id: str) -> BaseResponse:
    action = request.form.get("action", "")
    note = request.form.get("note", "").strip()
    if action not in REVIEW_ACTIONS:
        raise Unprocessable(Issue("invalid", "action must be approve or decline", ("action",)))
    if len(note) > MAX_NOTE:
        raise Unprocessable(Issue("invalid", f"the note is over {MAX_NOTE} characters", ("note",)))
    staff.review(runtime(), referral_id, action=action, note=note, reviewer=access.staff_member())
    return _back_to(referral_id, REVIEW_ACTIONS[action])


@console_bp.post("/referrals/<referral_id>/retry")
def retry(referral_id: str) -> BaseResponse:
    staff.retry(runtime(), referral_id)
    return _back_to(referral_id, "retried")


@console_bp.post("/referrals/<referral_id>/cancel")
def cancel(referral_id: str) -> BaseResponse:
    console.cancel_appointment(runtime(), referral_id, staff_member=access.staff_member())
    return _back_to(referral_id, "cancelling")


@console_bp.get("/chairs")
def chair_day() -> str:
    rt = runtime()
    day = _day(request.args.get("day")) or console.local_today(rt)
    opening = console.opening_hours(rt, day)
    chairs = console.infusions_on(rt, day)
    opens, closes = opening or _whole_working_day(day, rt)
    ticks, per_minute = chart.timeline_scale(opens, closes)
    rows = {
        chair: [
            chart.timeline_block(
                i.start,
                i.end,
                opens,
                per_minute,
                i.label,
                i.referral_id,
            )
            for i in infusions
        ]
        for chair, infusions in chairs.items()
    }
    every = [i for infusions in chairs.values() for i in infusions]
    load = load_chart(rt.clinic, every, opens, closes, per_minute)
    return render_template(
        "console/chairs.html",
        day=day,
        opening=opening,
        chairs=chairs,
        rows=rows,
        ticks=ticks,
        names={c.id: c.name for c in rt.clinic.chairs},
        chart=chart,
        load=load,
        load_height=LOAD_HEIGHT,
        repeats=console.repeats_due_on(rt, day),
        previous_day=day.fromordinal(day.toordinal() - 1),
        next_day=day.fromordinal(day.toordinal() + 1),
    )


@console_bp.get("/activity")
def activity() -> str:
    per_day = console.decisions_per_day(runtime())
    bars, ticks, tallest = chart.decision_bars(per_day, console.CHART_DECISIONS)
    return render_template(
        "console/activity.html",
        per_day=per_day,
        bars=bars,
        ticks=ticks,
        tallest=tallest,
        decisions=(*console.CHART_DECISIONS, "pending"),
        chart=chart,
    )


def _local_visit(appointment: dict[str, Any] | None) -> dict[str, Any] | None:
    """The appointment's times on the clinic's clock, as staff speak of them."""
    if not appointment or not appointment.get("start") or not appointment.get("end"):
        return None
    zone = runtime().clinic.zone
    start = datetime.fromisoformat(appointment["start"]).astimezone(zone)
    end = datetime.fromisoformat(appointment["end"]).astimezone(zone)
    return {"start": start, "end": end, "day": start.date().isoformat()}


def _back_to(referral_id: str, done: str) -> BaseResponse:
    # 303: the browser follows with a GET, so a reload never repeats the action.
    return redirect(url_for("console.referral", referral_id=referral_id, done=done), code=303)


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise FhirError.single("invalid", f"{name} must be one of {', '.join(allowed)}", name)
    return value


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FhirError.single("invalid", "day must be a date such as 2026-11-23", "day") from None


def _whole_working_day(day: date, rt: Any) -> tuple[Any, Any]:
    """A closed day still gets an axis (08:00-18:00 local), so the page keeps its shape."""
    zone = rt.clinic.zone
    return datetime.combine(day, time(8), tzinfo=zone), datetime.combine(day, time(18), tzinfo=zone)
