"""`referral-service policy reevaluate`: open referrals decided under an earlier policy version
are decided again under the current one; every change is listed and recorded in the referral's
history, unchanged and finished referrals are left alone. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from referral_service.adapters.db import referrals as repo
from referral_service.cli import main
from referral_service.domain.policy import DEFAULT_POLICY, load_policy
from referral_service.services.assessment.policy_reevaluation import reevaluate_open_referrals
from referral_service.worker import Worker
from tests.support.referrals import FHIR_JSON, eligible_referral

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
EARLIER = "2026.11-earlier"


def _earlier_policy(tmp_path: Path) -> Any:
    """The default policy as an earlier version that also reviewed the word "mornings"."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    data["version"] = EARLIER
    data["free_text_words"].append("mornings")
    path = tmp_path / "earlier.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_policy(str(path))


def _medication(ident: str, name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": ident,
        "status": status,
        "subject": {"reference": "#patient"},
        "medicationCodeableConcept": {"text": name},
        **extra,
    }


def _referrals() -> dict[str, dict[str, Any]]:
    mornings = eligible_referral()
    mornings["note"] = [{"text": "Patient prefers mornings"}]
    # Eptinezumab after two failed preventives, while taking rimegepant every other day
    eptinezumab = eligible_referral()
    eptinezumab["note"] = [{"text": "Patient prefers mornings"}]
    eptinezumab["code"] = {
        "coding": [{"system": "https://referral-service.dev/protocol", "code": "eptinezumab"}]
    }
    trial = {"effectivePeriod": {"start": "2025-01-01", "end": "2025-06-01"}}
    every_other_day = {"timing": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}}
    eptinezumab["contained"] += [
        _medication("m1", "propranolol", "stopped", **trial),
        _medication("m2", "topiramate", "stopped", **trial),
        _medication("m3", "Nurtec ODT 75 mg", "active", dosage=[every_other_day]),
    ]
    eptinezumab["supportingInfo"] += [{"reference": f"#m{n}"} for n in (1, 2, 3)]
    no_birth_date = eligible_referral()
    del no_birth_date["contained"][0]["birthDate"]
    return {
        "mornings": mornings,
        "eptinezumab": eptinezumab,
        "no-birth-date": no_birth_date,
        "booked": eligible_referral(),
    }


def _decided_under_the_earlier_policy(client, runtime, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    runtime.policy = _earlier_policy(tmp_path)
    ids = {}
    for name, document in _referrals().items():
        response = client.post(
            "/fhir/ServiceRequest", json=document, headers={"Content-Type": FHIR_JSON}
        )
        assert response.status_code == 201, response.get_json()
        ids[name] = response.get_json()["id"]
    Worker(runtime).run_until_idle()
    assert _states(runtime, ids) == {
        "mornings": "needs-review",
        "eptinezumab": "needs-review",
        "no-birth-date": "needs-information",
        "booked": "booked",
    }
    runtime.policy = load_policy(None)  # the new version is installed
    return ids


def _states(runtime, ids: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with runtime.engine.connect() as conn:
        return {
            name: repo.get_task_for_referral(conn, referral_id).state.business_status
            for name, referral_id in ids.items()
        }


def _events(runtime, referral_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with runtime.engine.connect() as conn:
        return [e for e in repo.list_events(conn, referral_id) if e["kind"] == "re-evaluated"]


def test_a_dry_run_lists_the_changes_and_writes_nothing(client, runtime, tmp_path) -> None:
    ids = _decided_under_the_earlier_policy(client, runtime, tmp_path)
    report = reevaluate_open_referrals(runtime, dry_run=True)
    changed = {c.referral_id: c for c in report.changes}
    assert set(changed) == {ids["mornings"], ids["eptinezumab"]}
    assert not any(c.applied for c in report.changes)
    assert report.summary() == {
        "policy_version": load_policy(None).version,
        "dry_run": True,
        "open": 3,  # the booked referral is done
        "changed": 2,
        "unchanged": 1,
        "skipped": 0,
    }
    assert _states(runtime, ids)["mornings"] == "needs-review"
    assert _events(runtime, ids["mornings"]) == []


def test_changes_are_applied_and_recorded_in_the_history(client, runtime, tmp_path) -> None:
    ids = _decided_under_the_earlier_policy(client, runtime, tmp_path)
    report = reevaluate_open_referrals(runtime)
    by_id = {c.referral_id: c.to_dict() for c in report.changes}
    eptinezumab = by_id[ids["eptinezumab"]]
    assert eptinezumab["from"]["decision"] == "needs-review"
    assert eptinezumab["from"]["protocol"] == "eptinezumab"
    assert eptinezumab["from"]["policy_version"] == EARLIER
    assert (eptinezumab["to"]["decision"], eptinezumab["to"]["protocol"]) == ("ineligible", None)
    assert eptinezumab["applied"] is True
    assert by_id[ids["mornings"]]["to"]["decision"] == "eligible"

    (event,) = _events(runtime, ids["eptinezumab"])
    assert event["detail"]["from"] == eptinezumab["from"]
    assert event["detail"]["to"] == eptinezumab["to"]
    assert _states(runtime, ids) == {
        "mornings": "eligible",
        "eptinezumab": "ineligible",
        "no-birth-date": "needs-information",
        "booked": "booked",
    }
    with runtime.engine.connect() as conn:
        stored = repo.get_referral(conn, ids["eptinezumab"]).decision
    assert stored.policy_version == load_policy(None).version
    assert any("rimegepant every other day" in r.detail for r in stored.reasons)

    Worker(runtime).run_until_idle()  # the newly eligible referral is booked
    assert _states(runtime, ids)["mornings"] == "booked"
    again = reevaluate_open_referrals(runtime)
    assert (again.summary()["changed"], again.summary()["open"]) == (0, 1)


def test_the_command_prints_changes_without_patient_data(
    client, runtime, tmp_path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _decided_under_the_earlier_policy(client, runtime, tmp_path)
    monkeypatch.setenv("REFERRAL_DATABASE_URL", database_url)
    monkeypatch.delenv("REFERRAL_POLICY_FILE", raising=False)
    dry = CliRunner().invoke(main, ["policy", "reevaluate", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    lines = [json.loads(line) for line in dry.stdout.splitlines()]
    assert {line["referral"] for line in lines[:-1]} == {ids["mornings"], ids["eptinezumab"]}
    assert lines[-1]["changed"] == 2 and lines[-1]["dry_run"] is True
    assert "Testperson" not in dry.stdout and "1980" not in dry.stdout
    assert _states(runtime, ids)["eptinezumab"] == "needs-review"

    applied = CliRunner().invoke(main, ["policy", "reevaluate"])
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout.splitlines()[-1])["changed"] == 2
    assert _states(runtime, ids)["eptinezumab"] == "ineligible"
