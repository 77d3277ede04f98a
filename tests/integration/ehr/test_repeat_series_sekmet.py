"""A repeated series booked at once on the clinic EHR (SEKMET, a 3-visit course with
`repeat.book: true`): through intake and the worker the whole repeat course is booked in its due
window in one more search and one more transaction, every visit holding its Slots and listed in
the Task; revoking frees every Slot of both courses; a due window where the whole repeat course
cannot fit books the first course and records the repeat as due, booking none of it; a repeat
booked by an attempt whose reply was lost is kept, not doubled nor recorded as due."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from referral_service.adapters.ehr import repeat_steps
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.slots import infusion_schedules
from referral_service.domain.scheduling.clinic import Clinic, clinic_from_dict
from referral_service.domain.scheduling.planner import RepeatDue
from referral_service.fhir import scheduling as fs
from referral_service.worker import Worker
from tests.integration.ehr.conftest import add_referrals, booking_request
from tests.integration.ehr.test_repeat_booking_sekmet import (
    ALL_DAYS,
    ZONE,
    Service,
    first_day,
    local_day,
)
from tests.support.referrals import FHIR_JSON, eligible_referral, variant
from tests.support.sekmet import SekmetServer

pytestmark = pytest.mark.ehr

# Each visit's Appointment description and Task output text, the first course then the repeat.
BOTH_COURSES = [f"visit {k} of 3" for k in (1, 2, 3)] + [
    f"repeat course, visit {k} of 3" for k in (1, 2, 3)
]


def series_clinic() -> Clinic:
    """One chair of its own, open 09:00-11:00 daily (one 2-hour run a day); the standard
    infusion given on 3 consecutive open days, repeated a week later +- 1 day, booked at once."""
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "chairs": [{"id": f"chair-{uuid.uuid4().hex[:6]}", "name": "Chair 1"}],
            "opening_hours": {day: {"open": "09:00", "close": "11:00"} for day in ALL_DAYS},
            "protocols": {
                "standard-infusion": {
                    "minutes": 120,
                    "drugs": ["iv-fluids", "metoclopramide", "ketorolac"],
                    "series": {"visits": 3, "spacing": "consecutive-open-days"},
                    "repeat": {"every_days": 7, "tolerance_days": 1, "book": True},
                },
                "dhe": {"minutes": 120, "drugs": ["dhe"]},
                "eptinezumab": {"minutes": 60, "drugs": ["eptinezumab"]},
            },
        }
    )


@pytest.fixture(params=["on", "off"])
def service(
    sekmet_server: SekmetServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Service]:
    service = Service(sekmet_server, tmp_path, request.param, series_clinic(), days=16)
    yield service
    service.engine.dispose()


def test_the_whole_repeat_series_is_booked_listed_and_freed_on_cancel(service: Service) -> None:
    identifier = f"repeat-series-{uuid.uuid4().hex[:8]}"
    referral_id = service.refer(identifier)

    found = service.ours(referral_id)
    assert [a["status"] for a in found] == ["booked"] * 6
    assert [fs.appointment_visit(a) for a in found] == [1, 2, 3, 4, 5, 6]
    assert [a.get("description") for a in found] == BOTH_COURSES
    days = [local_day(a) for a in found]
    one = timedelta(days=1)
    assert days[1] - days[0] == days[2] - days[1] == one  # every day is open: consecutive
    assert days[4] - days[3] == days[5] - days[4] == one
    assert days[3] - days[0] in (timedelta(days=d) for d in (6, 7, 8))
    slots = {a["id"]: fs.appointment_slot_ids(a) for a in found}
    for appointment_id, slot_ids in slots.items():
        assert len(slot_ids) == 8
        for sid in slot_ids:
            slot = service.slot(sid)
            assert slot["status"] == "busy"
            assert fs.slot_holder(slot) == f"Appointment/{appointment_id}"

    outputs = service.task(referral_id)["output"]
    assert [o["type"]["text"] for o in outputs] == BOTH_COURSES
    with service.runtime.unit_of_work(read_only=True) as uow:
        rows = uow.appointments.series(referral_id)
    assert [r["ehr_reference"] for r in rows] == [f"Appointment/{a['id']}" for a in found]
    assert [(r["visit"], r["visits"]) for r in rows] == [(k, 3) for k in range(1, 7)]
    assert [o["valueReference"]["reference"] for o in outputs] == [
        f"Appointment/{r['id']}" for r in rows
    ]

    revoked = variant(eligible_referral(identifier), id=referral_id, status="revoked")
    response = service.api.put(
        f"/fhir/ServiceRequest/{referral_id}",
        json=revoked,
        headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200
    Worker(service.runtime).run_until_idle()
    assert [a["status"] for a in service.ours(referral_id)] == ["cancelled"] * 6
    for slot_ids in slots.values():
        for sid in slot_ids:
            slot = service.slot(sid)
            assert slot["status"] == "free" and fs.slot_holder(slot) is None


def test_a_window_where_the_whole_repeat_cannot_fit_books_none_of_it(service: Service) -> None:
    # Another system takes the eighth day after the first: every repeat start in the due window
    # (days 6, 7, 8) would need it within its three consecutive days.
    blocked = first_day() + timedelta(days=8)
    with FhirClient.from_settings(service.settings) as client:
        slots = client.search("Slot", {"schedule": f"Schedule/{service.schedule}", "_count": "500"})
        taken = [s for s in slots if local_day(s) == blocked]
        assert taken
        for slot in taken:
            client.update(fs.held_slot(slot, "Appointment/someone-else"))

    referral_id = service.refer(f"repeat-series-due-{uuid.uuid4().hex[:8]}")
    found = service.ours(referral_id)
    assert [fs.appointment_visit(a) for a in found] == [1, 2, 3]
    assert local_day(found[0]) == first_day()
    with service.runtime.unit_of_work(read_only=True) as uow:
        rows = uow.appointments.series(referral_id)
    assert [(r["status"], r["visit"]) for r in rows] == [
        ("booked", 1),
        ("booked", 2),
        ("booked", 3),
        ("proposed", 4),
    ]
    outputs = service.task(referral_id)["output"]
    assert [o["type"]["text"] for o in outputs][3:] == ["repeat course due"]
    due_opens = datetime.fromisoformat(outputs[3]["valuePeriod"]["start"]).astimezone(ZONE)
    assert due_opens.date() == first_day() + timedelta(days=6)


def test_booking_with_its_repeat_series_costs_the_ehr_two_requests_more(service: Service) -> None:
    referral_id, outcome, interactions = service.book_counting()
    assert outcome.booked
    assert [fs.appointment_visit(a) for a in service.ours(referral_id)] == [1, 2, 3, 4, 5, 6]
    if service.settings.ehr_transactions:
        # The Schedule read; the first course: a range search batch and a transaction; the
        # whole repeat course: a search batch of its due window and a transaction.
        assert interactions == ["read", "transaction", "transaction", "transaction", "transaction"]
    else:  # visit by visit for each course; the two search batches are the only transactions
        assert interactions.count("transaction") == 2


def test_a_repeat_booked_by_a_lost_reply_is_kept_when_its_window_has_no_room_left(
    service: Service,
) -> None:
    if not service.settings.ehr_transactions:
        pytest.skip("a lost reply is recovered by the conditional create in the transaction")
    referral_id = f"ref-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    add_referrals(service.engine, [referral_id], now)
    request = booking_request(referral_id, now)
    with FhirClient.from_settings(service.settings) as client:
        assert service.book(client, request, now).booked
        found = service.ours(referral_id)
        # Another system then takes every Slot still free: the due window has no room left.
        schedule = f"Schedule/{service.schedule}"
        for slot in client.search(
            "Slot", {"schedule": schedule, "status": "free", "_count": "500"}
        ):
            client.update(fs.held_slot(slot, "Appointment/someone-else"))
        day = local_day(found[0])
        # The repeat step once more, as after its transaction's reply was lost.
        again = repeat_steps.book_repeat(
            client,
            service.clinic,
            infusion_schedules(client, (service.schedule,)),
            request,
            service.clinic.protocol("standard-infusion"),
            RepeatDue(day + timedelta(days=6), day + timedelta(days=8)),
            [fs.parse_instant(a["start"], "start") for a in found[:3]],
            transactions=True,
        )
    assert [a["id"] for a in again] == [a["id"] for a in found[3:]]
    assert [a["status"] for a in service.ours(referral_id)] == ["booked"] * 6


def _take_days(client: FhirClient, service: Service, days: set[date]) -> None:
    """Another system takes every free Slot of these days."""
    schedule = f"Schedule/{service.schedule}"
    for slot in client.search("Slot", {"schedule": schedule, "status": "free", "_count": "500"}):
        if local_day(slot) in days:
            client.update(fs.held_slot(slot, "Appointment/someone-else"))


def test_booking_again_records_the_repeat_due_after_the_booked_first_course(
    service: Service,
) -> None:
    if not service.settings.ehr_transactions:
        pytest.skip("a lost reply is recovered by the conditional create in the transaction")
    # The repeat's whole due window (days 7-9) taken: it is recorded as due.
    with FhirClient.from_settings(service.settings) as client:
        _take_days(client, service, {first_day() + timedelta(days=k) for k in (6, 7, 8)})
    referral_id = f"ref-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    add_referrals(service.engine, [referral_id], now)
    request = booking_request(referral_id, now)
    periods = []
    with FhirClient.from_settings(service.settings) as client:
        for _ in range(2):  # the second as after the first course transaction's reply was lost
            outcome = service.book(client, request, now)
            assert outcome.booked
            with service.runtime.unit_of_work(read_only=True) as uow:
                rows = uow.appointments.series(referral_id)
            assert [(r["status"], r["visit"]) for r in rows][-1] == ("proposed", 4)
            periods.append(rows[-1]["resource"]["requestedPeriod"][0])
    # The retry planned a first course on other days (its own Slots were taken) before finding
    # ours: the repeat still falls due 6-8 days after the booked first visit.
    assert [local_day(a) for a in service.ours(referral_id)][0] == first_day()
    assert periods[1] == periods[0]
    opens = fs.parse_instant(periods[1]["start"], "start").astimezone(ZONE)
    assert opens.date() == first_day() + timedelta(days=6)
