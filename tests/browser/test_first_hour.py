"""The first hour in a real browser (issue 20): serve the service, send `referral-service
demo`'s referrals through its real FHIR API, then walk the console as a newcomer would: every
lane shows a referral (booked, needs review, needs information, redirected, ineligible), and a
referral's page names its codes and says its rules and what is missing in plain words."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from referral_service.demo import send_examples
from tests.support.service import serve

pytestmark = pytest.mark.browser
SETTLED = {"booked", "emergency-redirect", "needs-information", "needs-review", "ineligible"}


def settled(base_url: str, timeout: float = 90) -> dict[str, list[str]]:
    """Referral ids by business status, once the worker has decided (and booked) them all."""
    deadline = time.monotonic() + timeout
    by_status: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        items = requests.get(f"{base_url}/api/referrals", timeout=5).json()["items"]
        by_status = collections.defaultdict(list)
        for item in items:
            by_status[item["business_status"]].append(item["id"])
        if len(items) == 8 and set(by_status) <= SETTLED:
            return by_status
        time.sleep(0.5)
    raise AssertionError(f"the demo's referrals did not settle: {dict(by_status)}")


def test_demo_then_every_lane_and_a_referral_in_plain_words(
    tmp_path: Path, browser_page: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with serve(tmp_path, {}, "--workers", "1") as service:
        base = service.base_url
        sent = list(send_examples(base))
        assert len(sent) == 8, sent  # seven transaction Bundles and the primary-care push
        lanes = settled(base)
        assert {k: len(v) for k, v in lanes.items()} == {
            "booked": 4,
            "needs-review": 1,
            "needs-information": 1,
            "emergency-redirect": 1,
            "ineligible": 1,
        }

        page.goto(f"{base}/console/")
        expect(page.locator("#count-needs-review")).to_have_text("1")
        expect(page.locator("#count-needs-information")).to_have_text("1")
        for lane, status in (
            ("needs-review", "needs-review"),
            ("needs-information", "needs-information"),
            ("booked", "booked"),
            ("redirected", "emergency-redirect"),
            ("ineligible", "ineligible"),
        ):
            table = page.locator(f'table[data-lane="{lane}"]')
            for referral_id in lanes[status]:
                expect(table.get_by_role("link", name=referral_id[:8])).to_be_visible()
            expect(table.locator("tbody tr")).to_have_count(len(lanes[status]))
        screenshot("first-hour-01-every-lane")

        # The chronic-cluster referral a neurologist decides: its code named, rules in words.
        review = page.locator('table[data-lane="needs-review"]')
        review.get_by_role("link", name=lanes["needs-review"][0][:8]).click()
        expect(page.locator("#decision-value")).to_have_text("needs-review")
        expect(
            page.get_by_text("G44.029 Chronic cluster headache, not intractable")
        ).to_be_visible()
        rule = page.get_by_role("cell", name="review.category")
        expect(rule).to_contain_text("A headache type a neurologist decides on")
        expect(page.get_by_role("cell", name="red-flag.coded-finding")).to_contain_text(
            "Red-flag diagnosis"
        )
        screenshot("first-hour-02-needs-review")

        # The referral that needs information asks in the referrer's words.
        page.goto(f"{base}/console/")
        waiting = page.locator('table[data-lane="needs-information"]')
        waiting.get_by_role("link", name=lanes["needs-information"][0][:8]).click()
        expect(page.locator("#decision-value")).to_have_text("needs-information")
        asked = page.locator("#missing li")
        expect(asked.first).to_be_visible()
        for text in asked.all_inner_texts():
            assert "Observation" not in text and "per-month" not in text, text
        expect(asked.filter(has_text="the patient has a headache, and over which")).to_be_visible()
        screenshot("first-hour-03-needs-information")

        # A booked referral: its chair, and the activity chart counts every decision.
        page.goto(f"{base}/console/")
        booked = page.locator('table[data-lane="booked"]')
        booked.get_by_role("link", name=lanes["booked"][0][:8]).click()
        expect(page.locator("#appointment-status")).to_have_text("booked")
        page.get_by_role("link", name="Activity").click()
        for decision in ("eligible", "needs-review", "needs-information", "ineligible"):
            expect(
                page.locator(f'figure.chart svg[role="img"] rect.d-{decision}').first
            ).to_be_attached()
        expect(
            page.locator('figure.chart svg[role="img"] rect.d-emergency-redirect')
        ).to_have_count(1)
        screenshot("first-hour-04-activity")
