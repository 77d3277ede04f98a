"""The referral form's web page in headless Chromium, against `referral-service serve`: a
bare ED referral goes needs-information, its Task's link opens the form, a wrong answer is
shown next to its field, the corrected answers are sent (keyboard only), and the worker books
the referral. An expired link shows why it cannot be used."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.push.test_form_answers import ed_referral
from tests.support.referrals import FHIR_JSON
from tests.support.service import serve

pytestmark = pytest.mark.browser
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
SECRET = {"REFERRAL_FORM_LINK_SECRET": "chromium-test-secret-0123456789"}


def task_of(base: str, referral_id: str) -> dict[str, Any]:
    bundle = requests.get(
        f"{base}/fhir/Task", params={"focus": f"ServiceRequest/{referral_id}"}, timeout=5
    ).json()
    return dict(bundle["entry"][0]["resource"])


def wait_for(base: str, referral_id: str, code: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = task_of(base, referral_id)
        if task["businessStatus"]["coding"][0]["code"] == code:
            return task
        time.sleep(0.25)
    raise AssertionError(f"the Task never reached {code}")


def refer(base: str, case: str) -> tuple[str, str]:
    answer = requests.post(f"{base}/fhir", json=ed_referral(case), headers=HEADERS, timeout=10)
    assert answer.status_code == 200, answer.text
    location = next(
        e["response"]["location"]
        for e in answer.json()["entry"]
        if "/ServiceRequest/" in e["response"]["location"]
    )
    referral_id = location.split("/ServiceRequest/")[1].split("/")[0]
    task = wait_for(base, referral_id, "needs-information")
    link = next(
        ext["valueUrl"]
        for item in task["input"]
        for ext in item.get("extension", [])
        if ext["url"].endswith("/form-link")
    )
    return referral_id, link if link.startswith("http") else f"{base}{link}"


def test_fill_fix_and_send_the_form_books_the_referral(
    tmp_path: Path, browser_page: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    with serve(tmp_path, SECRET, "--workers", "1") as service:
        base = service.base_url
        referral_id, link = refer(base, "21")
        page.goto(link)
        expect(page.get_by_role("heading", level=1)).to_contain_text("referral form")
        # fits a phone: nothing wider than the screen, every field labelled
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input:not([type=radio]), select')]
               .filter(e => !document.querySelector(`label[for="${e.id}"]`)).length"""
        )
        assert unlabelled == 0
        page.get_by_label("Or: headache days in an average month").fill("45")
        page.get_by_label("Of those, migraine days in an average month").fill("12")
        page.get_by_label("For how many months have the headaches been this frequent?").fill("6")
        page.get_by_label("Days in an average month the headache stopped usual activities").fill(
            "2.5"
        )
        screenshot("referral-form-filled")
        page.get_by_role("button", name="Send answers").click()

        field = page.get_by_label("Or: headache days in an average month")
        expect(field).to_have_attribute("aria-invalid", "true")
        described = field.get_attribute("aria-describedby")
        expect(page.locator(f"#{described}")).to_contain_text("outside 0..31")
        expect(page.locator("#debilitating-days-per-month-error")).to_contain_text("whole number")
        screenshot("referral-form-errors")

        field.fill("20")
        debilitating = page.get_by_label("Days in an average month the headache stopped usual")
        debilitating.fill("8")
        debilitating.focus()
        page.keyboard.press("Tab")  # on to the next control by keyboard
        expect(debilitating).not_to_be_focused()
        page.get_by_role("button", name="Send answers").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("The clinic has your answers")
        screenshot("referral-form-sent")
        wait_for(base, referral_id, "booked")

        page.goto(link)  # the same link again: used
        expect(page.get_by_role("alert")).to_contain_text("no longer current")
        log = service.log_path.read_text()
        assert "1984-03-09" not in log and "m-21" not in log


def test_an_expired_link_says_so(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    env = {**SECRET, "REFERRAL_FORM_LINK_DAYS": "0"}
    with serve(tmp_path, env, "--workers", "1") as service:
        _, link = refer(service.base_url, "22")
        time.sleep(2.1)
        response = page.goto(link)
        assert response is not None and response.status == 410
        expect(page.get_by_role("alert")).to_contain_text("expired")
