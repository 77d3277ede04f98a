"""CDS Hooks 2.0 feedback: `POST /cds-services/{id}/feedback` records which of our cards were
accepted or overridden (card, outcome, override reason code, when), never the clinician's comment;
feedback on a card we never issued, or a malformed body, is a 400 OperationOutcome and stores
nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import func, select

from referral_service.adapters.db import cds as store
from referral_service.adapters.db.tables import cds_cards, cds_feedback
from tests.integration.cds.cds_requests import draft_order, hook_request

SERVICE = "headache-infusion-referral"
URL = f"/cds-services/{SERVICE}"
FEEDBACK = f"{URL}/feedback"
REASON = {"system": "https://ehr.example.org/override-reasons", "code": "pt-declined"}


def _card(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.post(URL, json=hook_request([draft_order()]))
    assert response.status_code == 200, response.get_json()
    [card] = response.get_json()["cards"]
    return card


def _rows(runtime, card_uuid: str) -> list[store.FeedbackRow]:  # type: ignore[no-untyped-def]
    with runtime.engine.connect() as conn:
        return store.feedback_on(conn, card_uuid)


def _count(runtime, table) -> int:  # type: ignore[no-untyped-def]
    with runtime.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _metric(outcome: str) -> float:
    labels = {"service": SERVICE, "outcome": outcome}
    return REGISTRY.get_sample_value("referral_cds_feedback_total", labels) or 0.0


def test_accepted_and_overridden_cards_are_recorded_without_the_comment(client, runtime) -> None:
    card = _card(client)
    before = _metric("overridden"), _metric("accepted")
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-23T14:01:00Z",
            },
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": REASON, "userComment": "Mrs Jones wants to wait"},
                "outcomeTimestamp": "2026-11-23T15:02:00+01:00",
            },
        ]
    }
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 200, response.get_json()
    accepted, overridden = _rows(runtime, card["uuid"])
    assert (accepted.outcome, accepted.override_reason_code) == ("accepted", None)
    assert accepted.outcome_at.isoformat() == "2026-11-23T14:01:00+00:00"
    assert overridden.outcome == "overridden"
    assert (overridden.override_reason_system, overridden.override_reason_code) == (
        REASON["system"],
        REASON["code"],
    )
    assert overridden.outcome_at.isoformat() == "2026-11-23T14:02:00+00:00"
    assert overridden.received_at == runtime.now()
    assert {accepted.service_id, overridden.service_id} == {SERVICE}
    assert "Jones" not in repr(accepted) + repr(overridden)
    assert (_metric("overridden"), _metric("accepted")) == (before[0] + 1, before[1] + 1)


def test_issued_cards_are_recorded_by_id_and_kind_only(client, runtime) -> None:
    card = _card(client)
    with runtime.engine.connect() as conn:
        row = conn.execute(select(cds_cards).where(cds_cards.c.uuid == card["uuid"])).one()
    assert (row.service_id, row.topic, row.indicator) == (SERVICE, "eligible", "info")
    assert set(row._mapping) == {"uuid", "service_id", "topic", "indicator", "issued_at"}


def test_feedback_on_an_unknown_card_is_400_and_stores_nothing(client, runtime) -> None:
    card = _card(client)
    unknown = "0b8f2f8e-2a8c-4c4e-9d52-6f1f4f4f4f4f"
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-23T14:01:00Z",
            },
            {"card": unknown, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T14:01:00Z"},
        ]
    }
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400
    [issue] = response.get_json()["issue"]
    assert issue["code"] == "not-found"
    assert issue["expression"] == ["feedback[1].card"]
    assert unknown in issue["diagnostics"]
    assert _count(runtime, cds_feedback) == 0

    other_service = "/cds-services/headache-infusion-referral-select/feedback"
    response = client.post(other_service, json={"feedback": body["feedback"][:1]})
    assert response.status_code == 400, "a card is known only to the service that issued it"
    assert client.post("/cds-services/nope/feedback", json=body).status_code == 404


def test_malformed_feedback_is_400_with_an_operation_outcome(client, runtime) -> None:
    card = _card(client)
    good = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T14:01Z"}
    broken: list[tuple[Any, str]] = [
        ([good], "body"),
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": ["x"]}, "feedback[0]"),
        ({"feedback": [{**good, "card": "not-a-uuid"}]}, "feedback[0].card"),
        ({"feedback": [{**good, "card": None}]}, "feedback[0].card"),
        ({"feedback": [{**good, "outcome": "ignored"}]}, "feedback[0].outcome"),
        (
            {"feedback": [{k: v for k, v in good.items() if k != "outcomeTimestamp"}]},
            "feedback[0].outcomeTimestamp",
        ),
        (
            {"feedback": [{**good, "outcomeTimestamp": "2026-11-23T14:01:00"}]},
            "feedback[0].outcomeTimestamp",
        ),
        ({"feedback": [{**good, "outcomeTimestamp": "yesterday"}]}, "feedback[0].outcomeTimestamp"),
        ({"feedback": [{**good, "overrideReason": "pt-declined"}]}, "feedback[0].overrideReason"),
        (
            {"feedback": [{**good, "overrideReason": {"reason": {"system": "s"}}}]},
            "feedback[0].overrideReason.reason.code",
        ),
        (
            {"feedback": [{**good, "outcome": "accepted", "overrideReason": {"reason": REASON}}]},
            "feedback[0].overrideReason",
        ),
        (
            {"feedback": [{**good, "outcome": "accepted", "acceptedSuggestions": ["s1"]}]},
            "feedback[0].acceptedSuggestions",
        ),
    ]
    for body, where in broken:
        response = client.post(FEEDBACK, json=body)
        assert response.status_code == 400, body
        outcome = response.get_json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"] == [where], (body, outcome)
    unreadable = client.post(FEEDBACK, data=b"{not json", content_type="application/json")
    assert unreadable.status_code == 400
    assert unreadable.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(FEEDBACK).status_code == 405
    assert _count(runtime, cds_feedback) == 0


def test_a_repeated_hook_call_returns_and_records_the_same_cards(client, runtime) -> None:
    body = hook_request([draft_order("G43.709", "a"), draft_order("G44.22", "b")])
    first = client.post(URL, json=body).get_json()["cards"]
    again = client.post(URL, json=body).get_json()["cards"]
    assert [c["uuid"] for c in again] == [c["uuid"] for c in first]
    assert len({c["uuid"] for c in first}) == 2
    assert _count(runtime, cds_cards) == 2
    other_call = client.post(URL, json=hook_request([draft_order()])).get_json()["cards"]
    assert other_call[0]["uuid"] not in {c["uuid"] for c in first}
