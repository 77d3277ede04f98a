"""The planner's shortcuts on the booking path change no answer: a "no room" asked not to
explain itself costs no search past the window (the default still names the first date it
would fit); days with no EHR offer answer as empty days do; the nurses per tick laid from the
staffing bands are those `nurses_on_duty` counts at each tick."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from referral_service.domain.scheduling.chair_day import UNLIMITED, ChairDay
from referral_service.domain.scheduling.clinic import clinic_from_dict, load_clinic
from referral_service.domain.scheduling.planner import NoRoom, Plan, SeriesRequest, plan_series
from referral_service.domain.scheduling.rules import Visit, nurses_on_duty
from referral_service.domain.scheduling.slots import Candidate
from referral_service.domain.scheduling.window import BookingWindow

NY = ZoneInfo("America/New_York")
EXAMPLE = load_clinic(None)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def ny(m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(2026, m, d, h, mi, tzinfo=NY)


def one_chair_clinic():  # type: ignore[no-untyped-def]
    return clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "min_lead_minutes": 0,
            "chairs": [{"id": "c1", "name": "Chair 1"}],
            "opening_hours": {d: {"open": "08:00", "close": "10:00"} for d in WEEKDAYS},
            "protocols": {"infusion": {"minutes": 120}},
        }
    )


def test_no_room_still_names_the_first_date_it_would_fit_past_the_window() -> None:
    clinic = one_chair_clinic()
    window = BookingWindow(ny(3, 2, 7), ny(3, 3))  # Monday only, and Monday is full
    booked = [Visit.of(clinic, "infusion", "c1", ny(3, 2, 8))]
    refused = plan_series(clinic, SeriesRequest("infusion", "routine", window), booked)
    assert isinstance(refused, NoRoom)
    assert refused.constraint == "chairs" and refused.first_fit == date(2026, 3, 3)


def test_a_no_room_asked_not_to_explain_skips_the_search_past_the_window() -> None:
    clinic = one_chair_clinic()
    window = BookingWindow(ny(3, 2, 7), ny(3, 3))
    booked = [Visit.of(clinic, "infusion", "c1", ny(3, 2, 8))]
    request = SeriesRequest("infusion", "routine", window)
    refused = plan_series(clinic, request, booked, explain=False)
    assert isinstance(refused, NoRoom) and refused.first_fit is None
    # A plan is the same plan either way.
    wider = SeriesRequest("infusion", "routine", BookingWindow(ny(3, 2, 7), ny(3, 4)))
    assert plan_series(clinic, wider, booked, explain=False) == plan_series(clinic, wider, booked)


def test_days_without_an_offer_answer_as_before_around_the_one_that_has_one() -> None:
    """Offers on one Thursday only: Monday-Wednesday (open, no offer) and the weekend
    (closed) are skipped, Thursday is chosen; nothing offered at all is 'no room'."""
    window = BookingWindow(ny(3, 2, 7), ny(3, 16))
    request = SeriesRequest("standard-infusion", "routine", window)
    offer = Candidate("sched-1", ny(3, 5, 13), ny(3, 5, 15), ("slot-1",))
    plan = plan_series(EXAMPLE, request, [], [offer])
    assert isinstance(plan, Plan)
    assert [v.start for v in plan.visits] == [ny(3, 5, 13)] and plan.slot_ids == (("slot-1",),)
    refused = plan_series(EXAMPLE, request, [], [])
    assert isinstance(refused, NoRoom) and refused.constraint == "window"


@settings(max_examples=60, deadline=None)
@given(
    bands=st.lists(
        st.tuples(st.integers(6 * 4, 20 * 4), st.integers(1, 12 * 4), st.integers(0, 4)),
        min_size=1,
        max_size=4,
    ),
    day=st.dates(date(2026, 1, 1), date(2026, 12, 31)),
)
def test_nurses_per_tick_are_the_nurses_on_duty_at_each_tick(
    bands: list[tuple[int, int, int]], day: date
) -> None:
    """Quarter-hour bands (start, length, nurses), kept apart; DST days included."""
    laid, free_from = [], 0
    for start, length, nurses in sorted(bands):
        start = max(start, free_from)
        end = min(start + length, 23 * 4)
        if start >= end:
            continue
        laid.append(
            {
                "days": [day.strftime("%A").lower()],
                "start": f"{start // 4:02d}:{start % 4 * 15:02d}",
                "end": f"{end // 4:02d}:{end % 4 * 15:02d}",
                "nurses": nurses or 1,
            }
        )
        free_from = end
    clinic = clinic_from_dict(
        {
            "time_zone": "America/New_York",
            "chairs": [{"id": "c1", "name": "Chair 1"}],
            "opening_hours": {day.strftime("%A").lower(): {"open": "07:00", "close": "19:00"}},
            "nurses": {"bands": laid},
            "protocols": {"infusion": {"minutes": 60, "nurse_start_minutes": 10}},
        }
    )
    opening = clinic.opening_on(day)
    assert opening is not None
    load = ChairDay(clinic, *opening, [], ["c1"])
    expected = [
        nurses_on_duty(clinic, opening[0] + timedelta(minutes=i * load.tick))
        for i in range(load.size)
    ]
    assert load.nurses == [UNLIMITED if n is None else n for n in expected]
