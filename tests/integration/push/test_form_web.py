"""The referral form's web page, through its signed link: asks only what is missing, stores
a QuestionnaireResponse and resumes the referral; refuses an expired link, a tampered one,
another referral's round, and a replay; no patient data in the link or the logs."""

from __future__ import annotations

import logging

import pytest
from itsdangerous import timed

from referral_service.config import Settings
from referral_service.worker import Worker
from tests.integration.push.test_form_answers import ed_referral, refer, state, task_of
from tests.integration.push.test_form_answers_contained_patient import waiting

SECRET = "test-form-link-secret-0123456789abcdef"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        job_backoff_base_seconds=0.0,
        form_link_secret=SECRET,
        form_link_days=14,
    )


def form_link(task: dict) -> str:
    for item in task["input"]:
        for ext in item.get("extension", []):
            if ext["url"].endswith("/form-link"):
                return ext["valueUrl"]
    raise AssertionError("no form link on the Task")


def on_hold(send, runtime, case: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    _, _, task_id = refer(send, ed_referral(case))
    Worker(runtime).run_until_idle()
    task = task_of(send, task_id)
    assert state(task) == ("on-hold", "needs-information")
    return task_id, form_link(task)


ANSWERS = {
    "headache-days-per-month": "20",
    "migraine-days-per-month": "12",
    "months-this-frequent": "6",
    "debilitating-days-per-month": "8",
    "acute-triptan-days": "4",
    "could-be-pregnant": "yes",
    "pregnancy-status": "60001007",
    "pregnancy-status-date": "2026-11-22",
    "preventive-drug.0": "topiramate",
    "preventive-months.0": "3",
    "preventive-outcome.0": "side-effects",
}


def test_the_web_form_asks_what_is_missing_and_its_answers_book_the_referral(
    as_sender, senders_app, runtime, caplog
) -> None:
    caplog.set_level(logging.INFO)
    send = as_sender("er-a")
    task_id, link = on_hold(send, runtime, "11")
    path = link.split("://", 1)[-1][link.split("://", 1)[-1].find("/") :] if "://" in link else link
    assert path.startswith("/referral-form/")
    assert "Testperson" not in path and "1984" not in path and "m-11" not in path
    browser = senders_app.test_client()
    page = browser.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'for="headache-days-per-month"' in html and 'id="headache-days-per-month"' in html
    assert "red-flag-" not in html and "callback-" not in html  # only what is missing
    assert "1984-03-09" not in html and "m-11" not in html  # nothing of the patient
    done = browser.post(path, data=ANSWERS)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert Worker(runtime).run_until_idle() >= 2
    assert state(task_of(send, task_id)) == ("accepted", "booked")
    replay = browser.post(path, data=ANSWERS)
    assert replay.status_code in (409, 410)
    for record in caplog.records:
        assert "1984-03-09" not in record.getMessage() and "topiramate" not in record.getMessage()


def test_errors_are_shown_next_to_their_field(as_sender, senders_app, runtime) -> None:
    send = as_sender("er-a")
    _, link = on_hold(send, runtime, "12")
    path = link[link.find("/referral-form/") :]
    browser = senders_app.test_client()
    bad = browser.post(
        path, data={**ANSWERS, "headache-days-per-month": "45", "migraine-days-per-month": "many"}
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'aria-describedby="headache-days-per-month-error"' in html
    assert 'id="headache-days-per-month-error"' in html
    assert 'id="migraine-days-per-month-error"' in html and "whole number" in html
    with runtime.unit_of_work(read_only=True) as uow:
        assert uow.resources.find_by_identifiers("er-a", "QuestionnaireResponse", []) is None
    again = browser.post(path, data=ANSWERS)  # corrected: the link still works
    assert again.status_code == 200


def test_an_expired_link_is_refused(as_sender, senders_app, runtime, monkeypatch) -> None:
    send = as_sender("er-a")
    _, link = on_hold(send, runtime, "13")
    path = link[link.find("/referral-form/") :]
    real = timed.time.time
    monkeypatch.setattr(timed.time, "time", lambda: real() + 15 * 86400)
    browser = senders_app.test_client()
    assert browser.get(path).status_code == 410
    assert browser.post(path, data=ANSWERS).status_code == 410


def test_a_tampered_or_foreign_link_is_refused(as_sender, senders_app, runtime) -> None:
    send = as_sender("er-a")
    _, link = on_hold(send, runtime, "14")
    other_task, other = on_hold(send, runtime, "15")
    browser = senders_app.test_client()
    path = link[link.find("/referral-form/") :]
    token = path.rsplit("/", 1)[1]
    assert browser.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB")).status_code == 404
    # another referral's id under this link's signature: the signature no longer holds
    payload, rest = token.split(".", 1)
    other_payload = other[other.find("/referral-form/") :].rsplit("/", 1)[1].split(".", 1)[0]
    assert browser.get(f"/referral-form/{other_payload}.{rest}").status_code == 404
    # a link signed with another secret
    from referral_service.services.form_links import FormLinks

    forged = FormLinks("another-secret", 14).url(other_task, "0")
    assert browser.get(forged).status_code == 404


def test_the_console_shows_the_link_on_the_referral_page(as_sender, senders_app, runtime) -> None:
    send = as_sender("er-a")
    request, _, task_id = refer(send, ed_referral("16"))
    Worker(runtime).run_until_idle()
    link = form_link(task_of(send, task_id))
    page = senders_app.test_client().get(f"/console/referrals/{request}")
    assert page.status_code == 200
    assert link.replace("&", "&amp;") in page.get_data(as_text=True)


def test_the_web_form_resumes_a_referral_whose_patient_is_contained(
    as_sender, senders_app, runtime
) -> None:
    send = as_sender("er-a")
    request, task_id = waiting(send, runtime, "web")
    link = form_link(task_of(send, task_id))
    done = senders_app.test_client().post(link[link.find("/referral-form/") :], data=ANSWERS)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert Worker(runtime).run_until_idle() >= 2
    assert state(task_of(send, task_id)) == ("accepted", "booked")
