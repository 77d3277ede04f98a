"""A referrer's ServiceRequest.occurrence[x] bounds the booking, through intake and the worker
(SQLite and PostgreSQL): visits land inside the period, and an occurrence the booking window
cannot meet ends the referral no-slot, saying the occurrence was the constraint."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from referral_service.domain.scheduling.window import booking_window
from referral_service.worker import Worker
from tests.support.referrals import eligible_referral, post_referral, referral_task


def _open_days_after(runtime, first) -> list:  # type: ignore[no-untyped-def]
    """The clinic's open days from `first` on (local dates)."""
    days, day = [], first
    while len(days) < 10:
        if runtime.clinic.opening_on(day) is not None:
            days.append(day)
        day += timedelta(days=1)
    return days


def test_a_period_starting_three_open_days_into_the_window_is_booked_inside_it(
    client, runtime
) -> None:
    clinic, now = runtime.clinic, runtime.now()
    window = booking_window("routine", now, now, None, clinic)
    opens_day = window.opens.astimezone(clinic.zone).date()
    start = _open_days_after(runtime, opens_day)[3]
    end = start + timedelta(days=13)
    resource = eligible_referral("occurrence-1")
    resource["occurrencePeriod"] = {"start": start.isoformat(), "end": end.isoformat()}
    referral_id = post_referral(client, resource)
    plain_id = post_referral(client, eligible_referral("no-occurrence"))
    Worker(runtime).run_until_idle()

    assert referral_task(client, referral_id)["businessStatus"]["coding"][0]["code"] == "booked"
    with runtime.unit_of_work(read_only=True) as uow:
        visits = [r for r in uow.appointments.series(referral_id) if r["status"] == "booked"]
        plain = [r for r in uow.appointments.series(plain_id) if r["status"] == "booked"]
    assert visits and plain
    first_local = visits[0]["start"].astimezone(clinic.zone)
    # Without the occurrence the first visit would come earlier: the period is what moved it.
    assert plain[0]["start"].astimezone(clinic.zone).date() < start
    assert first_local.date() == start
    period_opens = datetime.combine(start, time(), tzinfo=clinic.zone)
    period_closes = datetime.combine(end + timedelta(days=1), time(), tzinfo=clinic.zone)
    for visit in visits:
        assert period_opens <= _aware(visit["start"]) and _aware(visit["end"]) <= period_closes


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive UTC datetimes back."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def test_an_occurrence_outside_the_whole_window_ends_no_slot_naming_the_occurrence(
    client, runtime
) -> None:
    clinic, now = runtime.clinic, runtime.now()
    window = booking_window("routine", now, now, None, clinic)
    after = window.closes.astimezone(clinic.zone).date() + timedelta(days=1)
    resource = eligible_referral("occurrence-late")
    resource["occurrencePeriod"] = {"start": after.isoformat()}
    referral_id = post_referral(client, resource)
    Worker(runtime).run_until_idle()

    task = referral_task(client, referral_id)
    assert task["businessStatus"]["coding"][0]["code"] == "no-slot", task
    notes = [note["text"] for note in task.get("note", ())]
    assert any("ServiceRequest.occurrence" in text for text in notes), task
    with runtime.unit_of_work(read_only=True) as uow:
        assert not [r for r in uow.appointments.series(referral_id) if r["status"] == "booked"]
