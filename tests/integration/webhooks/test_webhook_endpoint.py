"""POST /webhooks/fhir on SQLite and PostgreSQL: authentication, malformed input, recording,
and the worker turning notifications into referrals exactly once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from referral_service.adapters.db.tables import appointments, referral_identifiers, referrals
from referral_service.config import Settings
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral

from .conftest import AUTH, SECRET, counts, ehr_order, full_resource, notification

EXAMPLES = Path(__file__).parents[2] / "data" / "backport"


def post(client, body, headers=AUTH):  # type: ignore[no-untyped-def]
    return client.post("/webhooks/fhir", data=json.dumps(body), headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": FHIR_JSON},
        {"Content-Type": FHIR_JSON, "Authorization": "Bearer not-the-secret"},
        {"Content-Type": FHIR_JSON, "Authorization": f"Basic {SECRET}"},
        {"Content-Type": FHIR_JSON, "Authorization": "Bearer "},
    ],
)
def test_wrong_or_missing_secret_is_refused_and_nothing_recorded(client, engine, headers, caplog):
    order = ehr_order()
    response = post(client, full_resource(order), headers)
    assert response.status_code == 401
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert counts(engine) == {"events": 0, "jobs": 0, "referrals": 0}
    refused = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    assert len(refused) == 1
    assert "Testperson" not in caplog.text and order["identifier"][0]["value"] not in caplog.text


def test_without_a_configured_secret_every_notification_is_refused(engine, runtime):
    from referral_service.api.app import create_app

    runtime.settings = Settings(database_url=runtime.settings.database_url)
    client = create_app(runtime=runtime).test_client()
    response = post(client, full_resource(ehr_order()))
    assert response.status_code == 401
    assert counts(engine)["events"] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", FHIR_JSON, 400),
        (b"[1, 2]", FHIR_JSON, 400),
        (json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode(), FHIR_JSON, 400),
        (
            json.dumps({"resourceType": "Bundle", "type": "history", "entry": []}).encode(),
            FHIR_JSON,
            400,
        ),
        (json.dumps({"resourceType": "Patient", "id": "p"}).encode(), FHIR_JSON, 400),
        (json.dumps(notification(kind="party")).encode(), FHIR_JSON, 400),
        (json.dumps(notification()).encode(), "text/plain", 415),
    ],
)
def test_malformed_notifications_get_an_operation_outcome(
    client, engine, body, content_type, status
):
    headers = {**AUTH, "Content-Type": content_type}
    response = client.post("/webhooks/fhir", data=body, headers=headers)
    assert response.status_code == status
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert counts(engine)["events"] == 0


def test_every_backport_ig_example_is_accepted(client, engine, runtime):
    names = sorted(p.stem for p in EXAMPLES.glob("*.json"))
    assert len(names) == 10
    for name in names:
        body = json.loads((EXAMPLES / f"{name}.json").read_text())
        response = post(client, body)
        assert response.status_code == 202, (name, response.get_json())
    Worker(runtime).run_until_idle()
    # Their focus is an Encounter: acknowledged, recorded, and no referral made of it.
    assert counts(engine)["referrals"] == 0


def test_a_repeated_heartbeat_is_recorded_once(client, engine):
    for _ in range(3):
        assert post(client, notification(kind="heartbeat", number=None, since=4)).status_code == 202
    assert counts(engine)["events"] == 1


def test_the_same_notification_ten_times_at_once_makes_one_referral_and_one_appointment(
    app, engine, runtime
):
    body = full_resource(ehr_order())
    statuses: list[int] = []

    def deliver() -> None:
        statuses.append(post(app.test_client(), body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [202] * 10
    assert counts(engine)["events"] == 1
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        assert len(conn.execute(select(referrals.c.id)).all()) == 1
        assert len(conn.execute(select(appointments.c.id)).all()) == 1


def test_an_order_posted_directly_and_notified_makes_one_referral(client, engine, runtime):
    order = ehr_order()
    direct = {k: v for k, v in order.items() if k not in ("id", "meta")}
    posted = client.post("/fhir/ServiceRequest", json=direct, headers={"Content-Type": FHIR_JSON})
    assert posted.status_code == 201
    assert post(client, full_resource(order)).status_code == 202
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        assert len(conn.execute(select(referrals.c.id)).all()) == 1
        assert len(conn.execute(select(appointments.c.id)).all()) == 1
        linked = conn.execute(
            select(referral_identifiers.c.sender, referral_identifiers.c.referral_id).where(
                referral_identifiers.c.system == "urn:ehr/ServiceRequest"
            )
        ).all()
    assert linked == [("ehr", posted.get_json()["id"])]


def test_the_same_order_twice_and_an_older_version_late_change_nothing(client, engine, runtime):
    newer = ehr_order("order-7", version=2, priority="urgent")
    older = ehr_order("order-7", version=1, priority="routine")
    assert post(client, full_resource(newer, number=2)).status_code == 202
    assert post(client, full_resource(newer, number=3)).status_code == 202
    assert post(client, full_resource(older, number=1)).status_code == 202
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        rows = conn.execute(select(referrals.c.priority, referrals.c.version_id)).all()
    assert rows == [("urgent", 1)]


def test_a_newer_version_updates_the_referral(client, engine, runtime):
    assert post(client, full_resource(ehr_order("order-8", version=1), 1)).status_code == 202
    Worker(runtime).run_until_idle()
    revoked = ehr_order("order-8", version=2, status="revoked")
    assert post(client, full_resource(revoked, 2)).status_code == 202
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        rows = conn.execute(select(referrals.c.status, referrals.c.version_id)).all()
    assert rows == [("revoked", 2)]


def test_orders_for_other_clinics_are_acknowledged_and_ignored(client, engine, runtime):
    runtime.settings = Settings(
        database_url=runtime.settings.database_url,
        webhook_secret=SECRET,
        intake_filter_performer=("Organization/headache-clinic",),
    )
    ours = ehr_order(performer=[{"reference": "Organization/headache-clinic"}])
    theirs = ehr_order(performer=[{"reference": "Organization/cardiology"}])
    assert post(client, full_resource(theirs, 1)).status_code == 202
    assert post(client, full_resource(ours, 2)).status_code == 202
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        kept = conn.execute(select(referrals.c.resource)).scalars().all()
    assert [r["performer"] for r in kept] == [ours["performer"]]


def test_a_rest_hook_delivery_of_the_resource_makes_a_referral(client, engine, runtime):
    order = ehr_order("order-9")
    url = "/webhooks/fhir/ServiceRequest/order-9"
    for _ in range(2):
        assert client.put(url, data=json.dumps(order), headers=AUTH).status_code == 202
    assert (
        client.put(
            "/webhooks/fhir/ServiceRequest/other", data=json.dumps(order), headers=AUTH
        ).status_code
        == 400
    )
    Worker(runtime).run_until_idle()
    assert counts(engine)["referrals"] == 1
    assert counts(engine)["events"] == 1


def test_an_order_that_is_not_a_valid_referral_is_recorded_but_makes_nothing(
    client, engine, runtime
):
    order = ehr_order()
    del order["subject"]
    assert post(client, full_resource(order)).status_code == 202
    Worker(runtime).run_until_idle()
    assert counts(engine)["referrals"] == 0
    with engine.connect() as conn:
        failed = conn.execute(select(referrals.c.id)).all()
    assert failed == []


def test_an_empty_ping_without_an_ehr_is_recorded_and_skipped(client, engine, runtime):
    response = client.post(
        "/webhooks/fhir", data=b"", headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert response.status_code == 202
    assert Worker(runtime).run_until_idle() == 1
    assert counts(engine)["referrals"] == 0


def test_direct_referrals_do_not_go_back_to_the_ehr(client, engine, runtime):
    from referral_service.adapters.db.tables import jobs

    client.post(
        "/fhir/ServiceRequest", json=eligible_referral(), headers={"Content-Type": FHIR_JSON}
    )
    post(client, full_resource(ehr_order()))
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        kinds = conn.execute(select(jobs.c.kind, jobs.c.referral_id)).all()
        webhook_referral = conn.execute(
            select(referrals.c.id).where(referrals.c.source == "webhook")
        ).scalar_one()
    writebacks = {referral for kind, referral in kinds if kind == "ehr-task-writeback"}
    assert writebacks == {webhook_referral}


def test_notified_first_then_posted_is_one_referral_when_the_ehr_is_the_local_sender(
    client, engine, runtime
):
    """Senders scope identifiers, so the reverse order links only when the EHR's orders are
    filed under the sender that also POSTs them (REFERRAL_EHR_SENDER; see README)."""
    import dataclasses

    runtime.settings = dataclasses.replace(runtime.settings, ehr_sender="local")
    order = ehr_order()
    assert post(client, full_resource(order)).status_code == 202
    Worker(runtime).run_until_idle()
    direct = {k: v for k, v in order.items() if k not in ("id", "meta")}
    posted = client.post("/fhir/ServiceRequest", json=direct, headers={"Content-Type": FHIR_JSON})
    assert posted.status_code == 200
    Worker(runtime).run_until_idle()
    with engine.connect() as conn:
        assert len(conn.execute(select(referrals.c.id)).all()) == 1
        assert len(conn.execute(select(appointments.c.id)).all()) == 1
