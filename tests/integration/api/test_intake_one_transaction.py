"""An accepted referral is one transaction: its audit record commits with it, not after it."""

from __future__ import annotations

from sqlalchemy import event, select

from referral_service.adapters.db.tables import audit_events
from tests.support.referrals import FHIR_JSON, eligible_referral


def test_an_accepted_referral_and_its_audit_record_commit_once(client, engine) -> None:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    response = client.post(
        "/fhir/ServiceRequest",
        json=eligible_referral("one-commit"),
        headers={"Content-Type": FHIR_JSON},
    )
    assert response.status_code == 201
    assert len(commits) == 1
    with engine.connect() as conn:
        rows = conn.execute(select(audit_events)).mappings().all()
    assert [(r["action"], r["subtype"], r["entity"], r["outcome"]) for r in rows] == [
        ("C", "create", f"ServiceRequest/{response.get_json()['id']}", "0")
    ]


def test_a_resubmission_is_audited_after_its_answer(client, engine) -> None:
    document = eligible_referral("again-audited")
    headers = {"Content-Type": FHIR_JSON}
    first = client.post("/fhir/ServiceRequest", json=document, headers=headers)
    second = client.post("/fhir/ServiceRequest", json=document, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    with engine.connect() as conn:
        entities = conn.execute(select(audit_events.c.entity)).scalars().all()
    assert entities == [f"ServiceRequest/{first.get_json()['id']}"] * 2
