"""With REFERRAL_AUTH=jwt the console is for the staff scope only; with auth off, for loopback
callers only (the service itself refuses to listen elsewhere without auth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cds.jwt_mode import STAFF_SCOPE, access_token, jwt_mode_app

HTML = {"Accept": "text/html"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # access rules, not storage: one database kind is enough


def test_with_jwt_auth_only_the_staff_scope_opens_the_console(sqlite_url, tmp_path: Path) -> None:
    app, key = jwt_mode_app(sqlite_url, tmp_path)
    client = app.test_client()
    assert client.get("/console/", headers=HTML).status_code == 401
    referrer = access_token(key, "referrer-1", "system/ServiceRequest.cruds system/Task.rs")
    refused = client.get("/console/", headers={"Authorization": f"Bearer {referrer}", **HTML})
    assert refused.status_code == 403
    nurse = access_token(key, "nurse-station-1", STAFF_SCOPE)
    page = client.get("/console/", headers={"Authorization": f"Bearer {nurse}", **HTML})
    assert page.status_code == 200
    assert "Work queue" in page.get_data(as_text=True)


def test_with_auth_off_the_console_serves_loopback_only(client) -> None:
    remote = client.get("/console/", headers=HTML, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 403
    assert "loopback" in remote.get_data(as_text=True)
    assert client.get("/console/", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/console/", environ_base={"REMOTE_ADDR": "127.0.0.5"}).status_code == 200
