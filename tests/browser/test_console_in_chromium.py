"""A reviewer's morning in a real browser: a referral needing review appears in the work queue,
is approved with a note (keyboard only), gets booked by the service's worker, and shows on the
chair-day timeline; the activity chart counts it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.service import serve

pytestmark = pytest.mark.browser
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


def needs_review_referral() -> dict[str, Any]:
    """Chronic tension-type headache (G44.22): clinical-criteria.md leaves it to a neurologist."""
    referral = eligible_referral("browser-review-1")
    referral["reasonCode"][0]["coding"][0].update(
        code="G44.22", display="Chronic tension-type headache, intractable"
    )
    return referral


def business_status(base_url: str, referral_id: str) -> str:
    bundle = requests.get(
        f"{base_url}/fhir/Task", params={"focus": f"ServiceRequest/{referral_id}"}, timeout=5
    ).json()
    return str(bundle["entry"][0]["resource"]["businessStatus"]["coding"][0]["code"])


def wait_for(base_url: str, referral_id: str, code: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if business_status(base_url, referral_id) == code:
            return
        time.sleep(0.25)
    raise AssertionError(f"the Task never reached {code}")


def test_review_approve_book_and_see_the_chair_day(
    tmp_path: Path, browser_page: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with serve(tmp_path, {}, "--workers", "1") as service:
        base = service.base_url
        created = requests.post(
            f"{base}/fhir/ServiceRequest", json=needs_review_referral(), headers=HEADERS, timeout=10
        )
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        wait_for(base, referral_id, "needs-review")

        page.goto(f"{base}/console/")
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        lane = page.locator('table[data-lane="needs-review"]')
        expect(lane.get_by_role("link", name=referral_id[:8])).to_be_visible()
        expect(page.locator("#count-needs-review")).to_have_text("1")
        screenshot("01-work-queue")

        lane.get_by_role("link", name=referral_id[:8]).click()
        expect(page.locator("#business-status")).to_have_text("needs-review")
        expect(page.locator("#decision-value")).to_have_text("needs-review")
        expect(page.get_by_role("cell", name="review.category")).to_be_visible()
        expect(page.get_by_text("Chronic tension-type headache, intractable")).to_be_visible()
        screenshot("02-referral-needs-review")

        # Keyboard only: the note by its label, Tab to the approve button, Enter.
        page.get_by_label("Review note").focus()
        page.keyboard.type("Reviewed by the headache team: suitable for the standard infusion.")
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Approve for infusion")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("Approved")

        wait_for(base, referral_id, "booked")
        page.reload()
        expect(page.locator("#business-status")).to_have_text("booked")
        expect(page.locator("#appointment-status")).to_have_text("booked")
        expect(page.get_by_role("button", name="Cancel appointment")).to_be_visible()
        screenshot("03-referral-booked")

        page.locator("#chair-day-link").click()
        row = page.locator("#chair-day-table tbody tr", has_text=referral_id[:8])
        expect(row).to_have_count(1)
        expect(row).to_contain_text("standard-infusion")
        expect(row).to_contain_text("120 min")
        expect(page.locator(f'rect.block[data-referral="{referral_id}"]')).to_have_count(1)
        screenshot("04-chair-day")

        page.get_by_role("link", name="Activity").click()
        expect(page.locator('figure.chart svg[role="img"] rect.d-eligible')).to_have_count(1)
        screenshot("05-activity")
