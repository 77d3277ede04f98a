"""Review and retry from the console go through services/staff.py (as the JSON API does), on
SQLite and PostgreSQL: approve books, decline closes, retry books a failed booking again."""

from __future__ import annotations

from sqlalchemy import select

from referral_service.adapters.db.tables import audit_events
from referral_service.domain import lifecycle
from referral_service.services.tasks import write_task
from referral_service.worker import Worker
from tests.browser.test_console_pages import form_token, page, post_referral, tension_type


def _reviewable(client, runtime, identifier: str) -> tuple[str, str]:
    referral_id = post_referral(client, tension_type(identifier))
    Worker(runtime).run_until_idle()
    html = page(client, f"/console/referrals/{referral_id}")
    assert 'id="business-status">needs-review<' in html
    return referral_id, form_token(html)


def test_approving_in_the_console_books_the_referral(client, runtime) -> None:
    referral_id, token = _reviewable(client, runtime, "approve-1")
    response = client.post(
        f"/console/referrals/{referral_id}/review",
        data={"csrf_token": token, "action": "approve", "note": "suitable"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    Worker(runtime).run_until_idle()
    html = page(client, f"/console/referrals/{referral_id}?done=approved")
    assert "Approved: the referral is queued for booking." in html
    assert 'id="business-status">booked<' in html
    assert "reviewer=local-staff" in html
    with runtime.engine.connect() as conn:
        subtypes = (
            conn.execute(select(audit_events.c.subtype).where(audit_events.c.detail == "console"))
            .scalars()
            .all()
        )
    assert subtypes == ["review"]


def test_declining_in_the_console_closes_the_referral(client, runtime) -> None:
    referral_id, token = _reviewable(client, runtime, "decline-1")
    response = client.post(
        f"/console/referrals/{referral_id}/review",
        data={"csrf_token": token, "action": "decline", "note": "not for infusion"},
    )
    assert response.status_code == 303
    html = page(client, f"/console/referrals/{referral_id}")
    assert 'id="business-status">ineligible<' in html
    assert 'id="decision-value">ineligible<' in html
    again = client.post(
        f"/console/referrals/{referral_id}/review",
        data={"csrf_token": token, "action": "approve"},
    )
    assert again.status_code == 409


def test_a_failed_booking_is_retried_from_the_console(client, runtime) -> None:
    referral_id, token = _reviewable(client, runtime, "retry-1")
    with runtime.unit_of_work() as uow:  # as the worker leaves it after giving up on the EHR
        write_task(uow, referral_id, lifecycle.EHR_FAILED, runtime.now())
    html = page(client, "/console/?lane=failed-booking")
    assert referral_id[:8] in html
    assert "Retry booking" in page(client, f"/console/referrals/{referral_id}")
    response = client.post(f"/console/referrals/{referral_id}/retry", data={"csrf_token": token})
    assert response.status_code == 303
    Worker(runtime).run_until_idle()
    assert 'id="business-status">booked<' in page(client, f"/console/referrals/{referral_id}")
