"""Security headers on every answer (success, error, open and authenticated endpoints), no stack
traces or SQL in error bodies, and `serve` refusing a non-loopback host with auth off."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from referral_service.api.app import SECURITY_HEADERS
from referral_service.cli import main
from referral_service.config import Settings, SettingsError

PATHS = [
    ("GET", "/fhir/metadata"),
    ("GET", "/healthz"),
    ("GET", "/fhir/ServiceRequest"),
    ("GET", "/fhir/ServiceRequest/unknown"),
    ("POST", "/fhir/ServiceRequest"),
    ("GET", "/api/referrals"),
    ("GET", "/nowhere"),
]


@pytest.mark.parametrize("method,path", PATHS)
def test_every_answer_carries_the_security_headers(
    auth_client: Any, as_client: Any, method: str, path: str
) -> None:
    for headers in ({}, as_client("er-north")):
        response = auth_client.open(path, method=method, data=b"{oops", headers=headers)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
        assert response.headers.get("X-Request-ID")
        text = response.get_data(as_text=True)
        for leak in ("Traceback", "sqlalchemy", "SELECT ", 'File "'):
            assert leak not in text, (path, leak)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_serve_refuses_a_public_host_with_auth_off(
    host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("REFERRAL_AUTH", raising=False)
    monkeypatch.delenv("REFERRAL_ALLOW_INSECURE", raising=False)
    monkeypatch.setenv("REFERRAL_DATABASE_URL", f"sqlite:///{tmp_path / 'bind.db'}")
    result = CliRunner().invoke(main, ["serve", "--host", host, "--port", "1"])
    assert result.exit_code != 0
    assert "REFERRAL_AUTH=none" in result.output


def test_the_bind_check_allows_loopback_auth_or_an_explicit_override() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        Settings(auth="none").check_bind(host)
    Settings(auth="jwt").check_bind("0.0.0.0")
    Settings(auth="none", allow_insecure=True).check_bind("0.0.0.0")
    with pytest.raises(SettingsError):
        Settings.from_env({"REFERRAL_AUTH": "none"}).check_bind("192.168.1.5")
