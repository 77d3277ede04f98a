"""The staff console through Flask's test client, on SQLite and PostgreSQL: the work queue's
lanes, counts and order, the referral page, CSRF and loopback guards, cancelling an
appointment through the worker, the audit trail, and 4xx answers for bad input."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from referral_service.adapters.db.tables import appointments, audit_events
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral

HTML = {"Accept": "text/html"}


def post_referral(client, referral: dict[str, Any]) -> str:
    response = client.post(
        "/fhir/ServiceRequest", json=referral, headers={"Content-Type": FHIR_JSON}
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def tension_type(identifier: str, priority: str = "routine") -> dict[str, Any]:
    referral = eligible_referral(identifier)
    referral["priority"] = priority
    referral["reasonCode"][0]["coding"][0].update(code="G44.22", display="Chronic tension-type")
    return referral


def page(client, url: str) -> str:
    response = client.get(url, headers=HTML)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def test_queue_shows_lanes_with_counts_most_urgent_first(client, runtime) -> None:
    routine = post_referral(client, tension_type("q-routine"))
    urgent = post_referral(client, tension_type("q-urgent", "urgent"))
    booked = post_referral(client, eligible_referral("q-booked"))
    Worker(runtime).run_until_idle()
    html = page(client, "/console/")
    assert re.search(r'id="count-needs-review">2<', html)
    assert html.index(urgent[:8]) < html.index(routine[:8])
    assert booked[:8] in html  # today's infusions list it
    decided = html[html.index('id="decided"') :]
    assert re.search(rf'data-lane="booked".*?{booked[:8]}.*?id="decided-redirected"', decided, re.S)
    assert routine[:8] not in decided  # waiting referrals are in their lanes only
    only_urgent = page(client, "/console/?lane=needs-review&priority=urgent")
    assert urgent[:8] in only_urgent and routine[:8] not in only_urgent


def test_referral_page_tells_the_referral_decision_and_history_in_plain_words(
    client, runtime
) -> None:
    referral_id = post_referral(client, tension_type("plain-1"))
    Worker(runtime).run_until_idle()
    html = page(client, f"/console/referrals/{referral_id}")
    # codes named by the policy's official displays, the clinic's measures in words
    assert "G44.22 Chronic tension-type headache" in html
    assert "Headache days per month" in html and "20 (2026-07-01 to 2026-11-20)" in html
    assert "headache-days-per-month" not in html
    assert "review.category" in html and "<td>#hd</td>" in html
    assert "A headache type a neurologist decides on (cluster, tension-type, NDPH)" in html
    assert "evaluated" in html and "received" in html
    assert "Approve for infusion" in html and "Cancel appointment" not in html
    assert "female, 46 years old at referral" in html


def test_forms_without_the_cookie_token_or_from_another_origin_are_refused(client, runtime) -> None:
    referral_id = post_referral(client, eligible_referral("csrf-1"))
    Worker(runtime).run_until_idle()
    url = f"/console/referrals/{referral_id}/cancel"
    token = form_token(page(client, f"/console/referrals/{referral_id}"))
    assert client.post(url, data={}, headers=HTML).status_code == 403
    assert client.post(url, data={"csrf_token": "x" * 43}).status_code == 403
    foreign = client.post(
        url, data={"csrf_token": token}, headers={"Origin": "https://evil.example.org", **HTML}
    )
    assert foreign.status_code == 403
    assert "another origin" in foreign.get_data(as_text=True)
    fresh = runtime  # the refused posts changed nothing
    with fresh.engine.connect() as conn:
        assert conn.execute(select(appointments.c.status)).scalar() == "booked"


def test_staff_cancel_an_appointment_through_the_worker_and_the_audit_trail(
    client, runtime
) -> None:
    referral_id = post_referral(client, eligible_referral("cancel-1"))
    Worker(runtime).run_until_idle()
    token = form_token(page(client, f"/console/referrals/{referral_id}"))
    url = f"/console/referrals/{referral_id}/cancel"
    response = client.post(url, data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("done=cancelling")
    Worker(runtime).run_until_idle()
    html = page(client, f"/console/referrals/{referral_id}?done=cancelling")
    assert "Cancellation requested" in html
    assert 'id="business-status">cancelled<' in html
    assert 'id="appointment-status">cancelled<' in html
    assert "cancel-requested" in html and "by=local-staff" in html
    assert 'name="csrf_token"' not in html  # nothing left to do on it
    again = client.post(url, data={"csrf_token": token}, headers=HTML)
    assert again.status_code == 409
    with runtime.engine.connect() as conn:
        trail = conn.execute(
            select(audit_events.c.subtype, audit_events.c.outcome, audit_events.c.agent)
            .where(audit_events.c.entity == f"ServiceRequest/{referral_id}")
            .where(audit_events.c.detail == "console")
        ).all()
    assert ("cancellation", "0", "local-staff") in trail
    assert ("cancellation", "4", "local-staff") in trail


def test_chair_day_draws_each_booked_infusion_and_activity_counts_decisions(
    client, runtime
) -> None:
    referral_id = post_referral(client, eligible_referral("chair-1"))
    Worker(runtime).run_until_idle()
    html = page(client, f"/console/referrals/{referral_id}")
    day = re.search(r"/console/chairs\?day=(\d{4}-\d{2}-\d{2})", html).group(1)
    chairs = page(client, f"/console/chairs?day={day}")
    assert f'data-referral="{referral_id}"' in chairs
    assert "standard-infusion" in chairs and "120 min" in chairs
    activity = page(client, "/console/activity")
    assert activity.count('class="d-eligible"><title>') == 1
    assert "2026-11-23: 1 eligible" in activity


def test_bad_input_gets_4xx_never_500(client, runtime) -> None:
    assert client.get("/console/?lane=everything", headers=HTML).status_code == 400
    assert client.get("/console/?priority=whenever").status_code == 400
    assert client.get("/console/?priority=whenever").get_json()["resourceType"] == (
        "OperationOutcome"
    )
    assert client.get("/console/chairs?day=23/11/2026", headers=HTML).status_code == 400
    missing = client.get("/console/referrals/no-such-referral", headers=HTML)
    assert missing.status_code == 404
    assert "<h1>Cannot do that (404)</h1>" in missing.get_data(as_text=True)
    referral_id = post_referral(client, tension_type("bad-form-1"))
    Worker(runtime).run_until_idle()
    token = form_token(page(client, f"/console/referrals/{referral_id}"))
    url = f"/console/referrals/{referral_id}/review"
    maybe = client.post(url, data={"csrf_token": token, "action": "maybe"}, headers=HTML)
    assert maybe.status_code == 422
    long_note = {"csrf_token": token, "action": "decline", "note": "x" * 2001}
    assert client.post(url, data=long_note).status_code == 422
    unknown = client.post("/console/referrals/nope/retry", data={"csrf_token": token})
    assert unknown.status_code == 404
    assert 'id="business-status">needs-review<' in page(client, f"/console/referrals/{referral_id}")


def test_chair_day_shows_load_series_and_repeats_due(client, runtime) -> None:
    referral_id = post_referral(client, eligible_referral("chair-load"))
    Worker(runtime).run_until_idle()
    with runtime.engine.begin() as conn:
        row = (
            conn.execute(select(appointments).where(appointments.c.referral_id == referral_id))
            .mappings()
            .one()
        )
        # As a series' first visit, with its repeat course recorded as due around that day.
        conn.execute(appointments.update().where(appointments.c.id == row["id"]).values(visits=3))
        conn.execute(
            appointments.insert().values(
                {
                    **{k: row[k] for k in ("referral_id", "sender", "protocol", "last_updated")},
                    "id": "due-row",
                    "version_id": 1,
                    "status": "proposed",
                    "chair_id": "",
                    "start": row["start"] - timedelta(days=2),
                    "end": row["start"] + timedelta(days=2),
                    "ehr_reference": None,
                    "resource": {"resourceType": "Appointment", "status": "proposed"},
                    "visit": 4,
                    "visits": 3,
                }
            )
        )
    day = row["start"].astimezone(runtime.clinic.zone).date().isoformat()
    html = page(client, f"/console/chairs?day={day}")
    assert "visit 1 of 3" in html and "standard-infusion 1/3" in html
    assert 'data-census="1"' in html and 'data-census="2"' not in html
    assert 'data-phases="1"' in html  # the start and end phases
    assert 'class="capacity"' in html  # the example clinic models nurses
    repeats = html[html.index('id="repeats-due"') :]
    assert referral_id[:8] in repeats.split("</table>")[0]
    assert html.count(f'data-referral="{referral_id}"') == 1  # the due row is not a booking
