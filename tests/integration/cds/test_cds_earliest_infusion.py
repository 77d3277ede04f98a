"""The order-sign card's earliest infusion date, over HTTP on SQLite and PostgreSQL: signed and
sent right after, each referral is booked on the day its card stated, as the chairs fill up."""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import select

from referral_service.adapters.db.tables import appointments
from referral_service.worker import Worker
from tests.integration.cds.cds_requests import draft_order, hook_request
from tests.support.referrals import FHIR_JSON, eligible_referral

URL = "/cds-services/headache-infusion-referral"
STATED = re.compile(
    r"Earliest infusion if signed now: (\w{3} \d{1,2} \w{3})"
    r" \(standard infusion, 1 visit, routine\)\."
)


def _stated_day(client, today: date) -> date:
    response = client.post(URL, json=hook_request([draft_order()]))
    assert response.status_code == 200, response.get_json()
    [card] = response.get_json()["cards"]
    assert card["source"]["topic"]["code"] == "eligible"
    found = STATED.search(card["detail"])
    assert found, card["detail"]
    day = datetime.strptime(f"{found.group(1)} {today.year}", "%a %d %b %Y").date()
    return day


def _booked_day(client, runtime, engine, identifier: str) -> date:
    sent = client.post(
        "/fhir/ServiceRequest",
        json=eligible_referral(identifier),
        headers={"Content-Type": FHIR_JSON},
    )
    assert sent.status_code == 201, sent.get_json()
    worker = Worker(runtime)
    while worker.run_once():
        pass
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(appointments).where(appointments.c.referral_id == sent.get_json()["id"])
            )
            .mappings()
            .one()
        )
    assert row["status"] == "booked" and row["protocol"] == "standard-infusion"
    return row["start"].astimezone(runtime.clinic.zone).date()


def test_each_referral_is_booked_on_the_day_its_card_stated(client, runtime, engine, clock) -> None:
    today = clock.moment.astimezone(runtime.clinic.zone).date()
    stated_days = []
    for index in range(14):  # 4 chairs from 11:00 (lead time): the Monday fills, then Tuesday
        stated = _stated_day(client, today)
        assert _booked_day(client, runtime, engine, f"cds-earliest-{index}") == stated, index
        stated_days.append(stated)
    assert stated_days[0] == today
    assert stated_days == sorted(stated_days) and stated_days[-1] > today


def test_a_card_for_order_select_states_no_date(client) -> None:
    body = hook_request([draft_order()], hook="order-select")
    response = client.post(f"{URL}-select", json=body)
    assert response.status_code == 200, response.get_json()
    [card] = response.get_json()["cards"]
    assert card["source"]["topic"]["code"] == "eligible"
    assert "Earliest infusion" not in card["detail"]


def test_the_card_states_the_day_the_orders_occurrence_allows_and_it_is_booked_then(
    client, runtime, engine, clock
) -> None:
    from datetime import timedelta

    today = clock.moment.astimezone(runtime.clinic.zone).date()
    later = today + timedelta(days=3)
    period = {"start": later.isoformat(), "end": (later + timedelta(days=7)).isoformat()}
    order = {**draft_order(), "occurrencePeriod": period}
    response = client.post(URL, json=hook_request([order]))
    assert response.status_code == 200, response.get_json()
    [card] = response.get_json()["cards"]
    found = STATED.search(card["detail"])
    assert found, card["detail"]
    stated = datetime.strptime(f"{found.group(1)} {today.year}", "%a %d %b %Y").date()
    assert later <= stated <= later + timedelta(days=7)
    referral = {**eligible_referral("cds-occurrence"), "occurrencePeriod": period}
    sent = client.post("/fhir/ServiceRequest", json=referral, headers={"Content-Type": FHIR_JSON})
    assert sent.status_code == 201, sent.get_json()
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        query = select(appointments).where(appointments.c.referral_id == sent.get_json()["id"])
        row = conn.execute(query).mappings().one()
    assert row["start"].astimezone(runtime.clinic.zone).date() == stated
