"""`referral-service serve` over real HTTP: the order-sign card's earliest infusion date is the
day the referral is booked on when it is signed and sent right after (the worker books it)."""

from __future__ import annotations

import re
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import requests

from tests.integration.cds.cds_requests import draft_order, hook_request
from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.service import serve

URL = "/cds-services/headache-infusion-referral"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
CLINIC_ZONE = ZoneInfo("America/New_York")  # the example clinic's
STATED = re.compile(r"Earliest infusion if signed now: (\w{3} \d{1,2} \w{3}) \(")


def _stated(base_url: str) -> date:
    response = requests.post(f"{base_url}{URL}", json=hook_request([draft_order()]), timeout=30)
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    found = STATED.search(card["detail"])
    assert card["source"]["topic"]["code"] == "eligible" and found, card
    today = datetime.now(CLINIC_ZONE).date()
    day = datetime.strptime(f"{found.group(1)} {today.year}", "%a %d %b %Y").date()
    return day if day >= today else day.replace(year=today.year + 1)


def _booked(base_url: str, identifier: str) -> date:
    created = requests.post(
        f"{base_url}/fhir/ServiceRequest",
        json=eligible_referral(identifier),
        headers=HEADERS,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    focus = f"ServiceRequest/{created.json()['id']}"
    deadline, task = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        bundle = requests.get(f"{base_url}/fhir/Task", params={"focus": focus}, timeout=5).json()
        task = bundle["entry"][0]["resource"]
        if task["businessStatus"]["coding"][0]["code"] == "booked":
            break
        time.sleep(0.3)
    assert task["businessStatus"]["coding"][0]["code"] == "booked", task
    reference = task["output"][0]["valueReference"]["reference"]
    appointment = requests.get(f"{base_url}/fhir/{reference}", timeout=5).json()
    return datetime.fromisoformat(appointment["start"]).astimezone(CLINIC_ZONE).date()


def test_signed_and_sent_right_after_the_referral_is_booked_on_the_stated_day(tmp_path) -> None:
    with serve(tmp_path) as service:
        for index in range(3):
            stated = _stated(service.base_url)
            assert _booked(service.base_url, f"e2e-earliest-{index}") == stated, index
