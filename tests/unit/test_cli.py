"""The `referral-service` command, through click's runner."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from click.testing import CliRunner

from referral_service.cli import main
from tests.support.referrals import eligible_referral, service_request


def test_evaluate_prints_one_decision_per_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    eligible = tmp_path / "eligible.json"
    eligible.write_text(json.dumps(eligible_referral("cli-1")))
    episodic = service_request(
        "cli-2", contained=[{"resourceType": "Patient", "id": "patient", "birthDate": "1990-01-01"}]
    )
    other = tmp_path / "other.json"
    other.write_text(json.dumps(episodic))
    result = CliRunner().invoke(main, ["evaluate", str(eligible), str(other)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [d["decision"] for d in lines][0] == "eligible"
    assert lines[0]["referral"] == "https://er.example.org/referrals|cli-1"
    assert {
        "decision",
        "category",
        "priority",
        "protocol",
        "excluded_drugs",
        "earliest_start",
        "reasons",
        "missing",
        "policy_version",
    } <= set(lines[1])


def test_evaluate_exits_2_on_unreadable_input(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(eligible_referral("cli-3")))
    result = CliRunner().invoke(main, ["evaluate", str(bad), str(good)])
    assert result.exit_code == 2
    assert "bad.json" in result.stderr
    assert json.loads(result.stdout.strip())["decision"] == "eligible"


def test_evaluate_exits_2_on_a_missing_file(tmp_path) -> None:
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "absent.json")])
    assert result.exit_code == 2


def test_db_upgrade_reaches_head(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_DATABASE_URL", f"sqlite:///{tmp_path / 'up.db'}")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at" in result.output


def test_malformed_policy_file_stops_start_up(tmp_path, monkeypatch) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nthresholds: {headache_days_chronic: lots}\n")
    monkeypatch.setenv("REFERRAL_POLICY_FILE", str(policy))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(eligible_referral("cli-4")))
    result = CliRunner().invoke(main, ["evaluate", str(good)])
    assert result.exit_code == 1
    assert "policy" in result.output.lower()


def test_worker_heartbeat_probe_exit_codes(tmp_path, monkeypatch) -> None:
    beat = tmp_path / "worker.beat"
    runner = CliRunner()
    monkeypatch.delenv("REFERRAL_WORKER_HEARTBEAT_FILE", raising=False)
    unset = runner.invoke(main, ["worker-heartbeat"])
    assert unset.exit_code == 2
    assert "REFERRAL_WORKER_HEARTBEAT_FILE is not set" in unset.output

    monkeypatch.setenv("REFERRAL_WORKER_HEARTBEAT_FILE", str(beat))
    missing = runner.invoke(main, ["worker-heartbeat"])
    assert missing.exit_code == 1
    assert "no heartbeat" in missing.output

    beat.touch()
    fresh = runner.invoke(main, ["worker-heartbeat"])
    assert fresh.exit_code == 0, fresh.output
    assert "worker alive" in fresh.output

    # Default limit: the 120 s job lease plus 60 s.
    old = time.time() - 170
    os.utime(beat, (old, old))
    assert runner.invoke(main, ["worker-heartbeat"]).exit_code == 0
    older = time.time() - 190
    os.utime(beat, (older, older))
    stale = runner.invoke(main, ["worker-heartbeat"])
    assert stale.exit_code == 1
    assert "hung" in stale.output
    assert runner.invoke(main, ["worker-heartbeat", "--max-age", "300"]).exit_code == 0


def test_evaluate_counts_ages_in_the_clinics_time_zone(tmp_path, monkeypatch) -> None:
    """Criteria section 8 item 7: 2026-11-23T03:00Z is still 22 November in New York (the
    example clinic's zone), so a patient born 2008-11-23 is 17 there, though 18 in UTC."""
    monkeypatch.setenv("REFERRAL_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    referral = eligible_referral("cli-zone")
    referral["authoredOn"] = "2026-11-23T03:00:00Z"
    referral["contained"][0]["birthDate"] = "2008-11-23"
    document = tmp_path / "birthday.json"
    document.write_text(json.dumps(referral))
    in_new_york = CliRunner().invoke(main, ["evaluate", str(document)])
    assert in_new_york.exit_code == 0, in_new_york.output
    assert json.loads(in_new_york.stdout)["decision"] == "ineligible"
    clinic = Path(__file__).parents[2] / "referral_service/domain/scheduling/clinics/example.yaml"
    utc_clinic = tmp_path / "clinic.yaml"
    utc_clinic.write_text(clinic.read_text().replace("America/New_York", "UTC"))
    monkeypatch.setenv("REFERRAL_CLINIC_FILE", str(utc_clinic))
    in_utc = CliRunner().invoke(main, ["evaluate", str(document)])
    assert json.loads(in_utc.stdout)["decision"] == "eligible"
