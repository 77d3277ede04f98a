"""`referral-service ehr subscribe` refusals and --status, through click's runner."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from referral_service.cli import main

pytestmark = pytest.mark.ehr


@pytest.fixture
def env(sekmet_server, tmp_path):  # type: ignore[no-untyped-def]
    return {
        **sekmet_server.env(),
        "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REFERRAL_WEBHOOK_SECRET": "cli-secret",
        "REFERRAL_PUBLIC_URL": f"http://127.0.0.1:9/{uuid.uuid4().hex}",
    }


def test_status_of_a_subscription_never_made_exits_1(env) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["ehr", "subscribe", "--status"], env=env)
    assert result.exit_code == 1
    assert '"subscription": null' in result.output


def test_subscribing_without_a_secret_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        main, ["ehr", "subscribe"], env={**env, "REFERRAL_WEBHOOK_SECRET": ""}
    )
    assert result.exit_code == 1
    assert "REFERRAL_WEBHOOK_SECRET" in result.output


def test_subscribing_without_an_endpoint_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["ehr", "subscribe"], env={**env, "REFERRAL_PUBLIC_URL": ""})
    assert result.exit_code == 1
    assert "REFERRAL_PUBLIC_URL" in result.output


def test_subscribing_without_an_ehr_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        main, ["ehr", "subscribe"], env={**env, "REFERRAL_EHR_BASE_URL": ""}
    )
    assert result.exit_code == 1
    assert "REFERRAL_EHR_BASE_URL" in result.output
