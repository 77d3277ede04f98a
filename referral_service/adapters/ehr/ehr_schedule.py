"""The schedule of the clinic EHR (Schedules, Slots, Appointments), one adapter of the booking
port: a referral's whole series, booked all or nothing.

Per candidate range (the booking window in widening stretches, each reaching as far as a series
starting in it can end) ONE batch request searches the free Slots and the infusion Appointments
(the day loads the nurse rules need); the planner chooses the series on them. Where the EHR
supports transactions (REFERRAL_EHR_TRANSACTIONS, default on) ONE transaction Bundle then creates
every visit's Appointment (conditional on the visit's identifier) and marks every Slot busy with
an `ifMatch` version check: a Slot taken in between fails the whole Bundle (412), nothing is
booked, and the range is searched again. Without transactions the visits are booked one by one
(`series_steps.py`) and a visit that loses its Slots cancels the ones already booked.

So a booked series costs the EHR two requests on an uncontended schedule, whatever its length.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any

from referral_service.adapters.db import booking_lock
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.adapters.ehr import repeat_steps
from referral_service.adapters.ehr import series_steps as steps
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import EhrConflict, EhrUnavailable
from referral_service.adapters.ehr.slots import infusion_schedules
from referral_service.domain.scheduling.booking import (
    BookingOutcome,
    BookingRequest,
    no_slot,
    outcome_of,
)
from referral_service.domain.scheduling.clinic import Clinic, Protocol
from referral_service.domain.scheduling.planner import (
    NoRoom,
    Plan,
    RepeatDue,
    SeriesRequest,
    plan_series,
    repeat_due,
)
from referral_service.domain.scheduling.repeat_booking import books_repeat
from referral_service.domain.scheduling.series_booking import (
    due_instants,
    series_reach,
)
from referral_service.domain.scheduling.window import BookingWindow
from referral_service.fhir import scheduling as fs

Resource = dict[str, Any]
MAX_CONTESTED = 12  # lost transactions per attempt before handing back to the worker's backoff
SCHEDULES_TTL_SECONDS = 300.0  # the clinic's infusion Schedules change rarely
# Candidate ranges: the window's first 3 days, then up to day 7, then the rest. Wider than the
# old one-day first stretch: a day already full costs a second search for every booking, and a
# search of three days' Slots is one page (_count) on a clinic's schedule. The first stretch
# also reaches to the day the last series booked here started (`EhrSchedule._fitted_day`): the
# days before it are usually full, and reading them with it in one search costs less than a
# second search and plan. It always starts at the window's opening, so a freed earlier day is
# still found first; the stretches only bound what one search reads, never what is chosen.
RANGES = (timedelta(days=3), timedelta(days=7))


def candidate_ranges(
    window: BookingWindow, duration: timedelta, first_reach: timedelta = RANGES[0]
) -> list[BookingWindow]:
    """The window in consecutive stretches for the first visit (each reaching one treatment past
    its end, so a run starting inside it lies wholly inside it); the first reaches at least
    `first_reach` past the window's opening."""
    if window.is_empty:
        return []
    ranges, opens = [], window.opens
    first_reach = max(first_reach, RANGES[0])
    for reach in (first_reach, *(r for r in RANGES if r > first_reach)):
        closes = min(window.closes, window.opens + reach + duration)
        ranges.append(BookingWindow(opens, closes))
        if closes == window.closes:
            return ranges
        opens = window.opens + reach
    return [*ranges, BookingWindow(opens, window.closes)]


@dataclass(frozen=True)
class HeldSeries:
    """What booking on the EHR came to: our booked Appointments there (by visit), or none."""

    request: BookingRequest
    protocol: Protocol
    appointments: tuple[Resource, ...] = ()
    repeat_due: RepeatDue | None = None
    no_room: NoRoom | None = None  # why nothing was booked, when the planner said
    repeat: tuple[Resource, ...] = ()  # the repeat course's Appointments, when booked at once


class EhrSchedule:
    def __init__(
        self,
        ehr: FhirClient,
        clinic: Clinic,
        schedule_ids: tuple[str, ...],
        *,
        transactions: bool = True,
    ) -> None:
        self.ehr = ehr
        self.clinic = clinic
        self.schedule_ids = schedule_ids
        self.transactions = transactions
        self._schedules: tuple[float, dict[str, Resource]] | None = None
        self._fitted_day: date | None = None  # local day of the last booked series' start

    def schedules(self) -> dict[str, Resource]:
        """Schedule id -> chair Reference, read once in SCHEDULES_TTL_SECONDS."""
        now = monotonic()
        if self._schedules is None or now - self._schedules[0] > SCHEDULES_TTL_SECONDS:
            self._schedules = (now, infusion_schedules(self.ehr, self.schedule_ids))
        return self._schedules[1]

    def find(
        self, request: BookingRequest, window: BookingWindow, protocol: Protocol, now: datetime
    ) -> HeldSeries:
        """Book the series on the EHR (network only; our rows are written by `record`)."""
        schedules = self.schedules()
        contested, no_room = 0, None
        ranges = candidate_ranges(window, protocol.duration, self._first_reach(window))
        # A plan taking a short day's reserve waits for the later ranges (the planner's order
        # over the whole window: any day keeping the reserve first); no range keeps it: booked.
        taking: tuple[BookingWindow, Plan, dict[str, Resource]] | None = None
        for number, horizon in enumerate(ranges if schedules else (), 1):
            last = number == len(ranges)  # why nothing fits is only wanted of the last range
            while True:
                plan, slots = self._plan(request, protocol, horizon, window, schedules, last)
                if isinstance(plan, Plan) and plan.takes_reserve and (taking or not last):
                    taking = taking or (horizon, plan, slots)
                    break
                if not isinstance(plan, Plan):
                    no_room = plan
                    break
                held = self._attempt(request, protocol, plan, slots, schedules)
                if held is not None:
                    return held
                contested = _lost(contested)
        while taking is not None:
            horizon, plan, slots = taking
            held = self._attempt(request, protocol, plan, slots, schedules)
            if held is not None:
                return held
            contested = _lost(contested)
            again, slots = self._plan(request, protocol, horizon, window, schedules, False)
            taking = (horizon, again, slots) if isinstance(again, Plan) else None
        return HeldSeries(request, protocol, no_room=no_room)

    def _attempt(
        self,
        request: BookingRequest,
        protocol: Protocol,
        plan: Plan,
        slots: dict[str, Resource],
        schedules: dict[str, Resource],
    ) -> HeldSeries | None:
        """Book the plan in one transaction: the held series, or None when a Slot was taken."""
        booked = self._book(request, protocol, plan, slots, schedules)
        if booked:
            self._fitted_day = plan.visits[0].start.astimezone(self.clinic.zone).date()
            return self._with_repeat(HeldSeries(request, protocol, booked, plan.repeat_due))
        mine = steps.our_series(self.ehr, request.referral_id)
        if mine:  # an earlier attempt of ours had booked it (a lost reply)
            # Its repeat falls due after its own first visit, not after this retry's plan's.
            first = fs.appointment_times(mine[0]).start.astimezone(self.clinic.zone).date()
            return self._with_repeat(
                HeldSeries(request, protocol, mine, repeat_due(protocol, first))
            )
        return None

    def _with_repeat(self, held: HeldSeries) -> HeldSeries:
        """The first course booked: its repeat too, when the clinic books repeats and the due
        window has room (a second transaction), else it stays due."""
        if held.repeat_due is None or not books_repeat(held.protocol):
            return held
        repeat = repeat_steps.book_repeat(
            self.ehr,
            self.clinic,
            self.schedules(),
            held.request,
            held.protocol,
            held.repeat_due,
            [fs.appointment_times(a).start for a in held.appointments],
            transactions=self.transactions,
        )
        return replace(held, repeat=repeat)

    def _first_reach(self, window: BookingWindow) -> timedelta:
        """How far the first range reaches: to the end of the day the last series booked here
        started on, when that lies past the window's first days (at most RANGES[1]: one far
        booking, an occurrence date, must not make every search read a fortnight)."""
        if self._fitted_day is None:
            return RANGES[0]
        next_day = datetime.combine(self._fitted_day + timedelta(days=1), time(), self.clinic.zone)
        return min(next_day - window.opens, RANGES[1])

    def _plan(
        self,
        request: BookingRequest,
        protocol: Protocol,
        horizon: BookingWindow,
        window: BookingWindow,
        schedules: dict[str, Resource],
        explain: bool = True,
    ) -> tuple[Any, dict[str, Resource]]:
        """One batch: the range's free Slots and its Appointments; the planner's series on
        them (in the whole window: days outside the range simply offer nothing)."""
        reach = horizon.closes + series_reach(protocol)
        day_start = horizon.opens.astimezone(self.clinic.zone).replace(hour=0, minute=0, second=0)
        slots, others, offered = steps.range_offer(
            self.ehr,
            self.clinic,
            schedules,
            request.referral_id,
            protocol,
            (horizon.opens, day_start, reach),
        )
        priority = request.decision.priority or "routine"
        series = SeriesRequest(protocol.name, priority, window, request.occurrence)
        return plan_series(self.clinic, series, others, offered, explain=explain), slots

    def _book(
        self,
        request: BookingRequest,
        protocol: Protocol,
        plan: Plan,
        slots: dict[str, Resource],
        schedules: dict[str, Resource],
    ) -> tuple[Resource, ...]:
        """Every visit of the plan booked, or () with nothing left booked."""
        booking_lock.still_held()  # a booking stalled past its lease must not book a stale plan
        contents = [
            steps.content(
                request, protocol, visit, ids, schedules[visit.chair_id], (k, len(plan.visits))
            )
            for k, (visit, ids) in enumerate(zip(plan.visits, plan.slot_ids, strict=True), 1)
        ]
        runs = [[slots[sid] for sid in ids] for ids in plan.slot_ids]
        if not self.transactions:
            return steps.book_one_by_one(self.ehr, contents, runs)
        try:
            return steps.book_in_one_transaction(self.ehr, request.referral_id, contents, runs)
        except EhrConflict:
            return ()

    def record(self, uow: SqlUnitOfWork, held: HeldSeries, now: datetime) -> BookingOutcome:
        """Write (or refresh) our rows for the Appointments that live on the EHR: the visits
        the referral has no row for yet inserted in one statement (no read first: a first
        booking has none), the others updated in place."""
        if not held.appointments:
            return no_slot(held.no_room)
        request = held.request
        visits = self._visits(held, now)
        rows = [_new_row(request, values, local) for values, local in visits]
        inserted = uow.appointments.add_new(rows)
        taken = [
            (r, local)
            for r, (_, local) in zip(rows, visits, strict=True)
            if r["visit"] not in inserted
        ]
        if taken:  # a rebooking: those visits' rows are refreshed in place
            earlier = {r["visit"]: r for r in uow.appointments.series(request.referral_id)}
            for row, local in taken:
                if row["visit"] not in earlier:
                    raise RuntimeError(
                        f"cannot record the appointments of referral {request.referral_id}"
                    )
                row.update(_refreshed(earlier[row["visit"]], row, local))
                uow.appointments.update(row["id"], {k: v for k, v in row.items() if k not in _KEPT})
        first = rows[0]  # visit 1, as our row now reads (the database hands times back in UTC)
        return outcome_of(
            {**first, "start": first["start"].astimezone(UTC), "end": first["end"].astimezone(UTC)}
        )

    def _visits(self, held: HeldSeries, now: datetime) -> list[tuple[dict[str, Any], bool]]:
        """Each row's values (without its id and version), and whether it lives here only."""
        request = held.request
        visits = len(held.appointments)
        found: list[tuple[dict[str, Any], bool]] = []
        for number, appointment in enumerate((*held.appointments, *held.repeat), 1):
            times = fs.appointment_times(appointment)
            values = {
                "status": appointment["status"],
                "chair_id": fs.appointment_chair(appointment) or "",
                "protocol": held.protocol.name,
                "start": times.start,
                "end": times.end,
                "ehr_reference": f"Appointment/{appointment['id']}",
                # Our mirror is based on our own copy of the order, whatever the EHR's says.
                "resource": {
                    **appointment,
                    "basedOn": [{"reference": request.service_request_ref}],
                },
                "last_updated": now,
                "visit": number,
                "visits": visits,
            }
            found.append((values, False))
        if held.repeat_due is not None and not held.repeat:
            earliest, latest = due_instants(self.clinic, held.repeat_due)
            resource = fs.due_appointment(
                referral_id=request.referral_id,
                service_request_ref=request.service_request_ref,
                patient_ref=request.patient_ref,
                protocol=held.protocol.name,
                earliest=earliest,
                latest=latest,
            )
            values = {
                "status": "proposed",
                "chair_id": "",
                "protocol": held.protocol.name,
                "start": earliest,
                "end": latest,
                "ehr_reference": None,
                "resource": resource,
                "last_updated": now,
                "visit": visits + 1,
                "visits": visits,
            }
            found.append((values, True))
        return found

    def release(self, referral_id: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Resource]:
        """Cancel every visit of the referral on the EHR and free its Slots: our row id -> the
        cancelled Appointment."""
        cancelled = steps.cancel_series(self.ehr, referral_id, transactions=self.transactions)
        by_reference = {f"Appointment/{a['id']}": a for a in cancelled}
        return {
            str(row["id"]): by_reference[row["ehr_reference"]]
            for row in rows
            if row.get("ehr_reference") in by_reference
        }


def _lost(contested: int) -> int:
    """One more lost transaction; too many in one attempt go back to the worker's backoff."""
    if contested + 1 >= MAX_CONTESTED:
        raise EhrUnavailable(f"{contested + 1} slot races lost in one attempt; retry later")
    return contested + 1


_KEPT = ("id", "referral_id", "sender")  # what refreshing a visit's row leaves as it was


def _new_row(request: BookingRequest, values: dict[str, Any], local: bool) -> dict[str, Any]:
    row_id = uuid.uuid4().hex
    if local:  # the row is the resource's only home: it names the row and its version
        values = {
            **values,
            "resource": {**values["resource"], "id": row_id, "meta": {"versionId": "1"}},
        }
    return {
        "id": row_id,
        "version_id": 1,
        "referral_id": request.referral_id,
        "sender": request.sender,
        **values,
    }


def _refreshed(earlier: Mapping[str, Any], row: dict[str, Any], local: bool) -> dict[str, Any]:
    """A new row's values as an update of the visit's earlier row (its id, the next version)."""
    version = earlier["version_id"] + 1
    changes: dict[str, Any] = {"id": earlier["id"], "version_id": version}
    if local:
        changes["resource"] = {
            **row["resource"],
            "id": earlier["id"],
            "meta": {"versionId": str(version)},
        }
    return changes
