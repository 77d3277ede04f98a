"""Keys from a JWKS URL (a tiny local HTTP server): cached, refetched when a token names an
unknown `kid` (key rotation), and a JWKS outage answers 503, not 500 or a false 401."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from referral_service.api.app import create_app
from referral_service.runtime import Runtime
from tests.security.conftest import jwt_settings
from tests.security.tokens import KeyPair, bearer, claims, ec_pair, rsa_pair, sign


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[KeyPair] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.fetches += 1
                body = json.dumps({"keys": [pair.jwk() for pair in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def jwks_client(jwks: JwksServer, sqlite_url: str):  # type: ignore[no-untyped-def]
    app = create_app(runtime=Runtime(jwt_settings(sqlite_url, jwks_url=jwks.url)))
    return app.test_client()


def _search(client: Any, pair: KeyPair) -> int:
    token = sign(pair, claims(scope="system/ServiceRequest.rs"))
    return int(client.get("/fhir/ServiceRequest", headers=bearer(token)).status_code)


def test_keys_are_fetched_once_and_cached(jwks: JwksServer, jwks_client: Any) -> None:
    jwks.keys = [rsa_pair("k1")]
    assert _search(jwks_client, jwks.keys[0]) == 200
    assert _search(jwks_client, jwks.keys[0]) == 200
    assert jwks.fetches == 1


def test_an_unknown_kid_refetches_the_keys(
    jwks: JwksServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from referral_service.api import auth

    monkeypatch.setattr(auth, "JWKS_REFRESH_COOLDOWN_SECONDS", 0.0)
    jwks_client = create_app(
        runtime=Runtime(jwt_settings(sqlite_url, jwks_url=jwks.url))
    ).test_client()
    old, new = rsa_pair("k1"), ec_pair("k2")
    jwks.keys = [old]
    assert _search(jwks_client, old) == 200
    jwks.keys = [old, new]  # the issuer rotates in a new key
    assert _search(jwks_client, new) == 200
    assert jwks.fetches == 2


def test_made_up_kids_are_401_and_cannot_force_a_fetch_each(
    jwks: JwksServer, jwks_client: Any
) -> None:
    jwks.keys = [rsa_pair("k1")]
    assert _search(jwks_client, jwks.keys[0]) == 200
    for n in range(5):
        assert _search(jwks_client, rsa_pair(f"forged-{n}")) == 401
    assert jwks.fetches == 1  # the refresh cooldown holds


def test_an_unreachable_jwks_is_503(sqlite_url: str) -> None:
    url = "http://127.0.0.1:9/jwks.json"  # the discard port: nothing listens
    client = create_app(runtime=Runtime(jwt_settings(sqlite_url, jwks_url=url))).test_client()
    response = client.get("/fhir/ServiceRequest", headers=bearer(sign(rsa_pair(), claims())))
    assert response.status_code == 503
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_jwt_auth_without_audience_or_keys_does_not_start(sqlite_url: str) -> None:
    from referral_service.config import SettingsError

    with pytest.raises(SettingsError):
        create_app(runtime=Runtime(jwt_settings(sqlite_url)))
    with pytest.raises(SettingsError):
        create_app(runtime=Runtime(jwt_settings(sqlite_url, jwt_audience=None, jwks_url="x")))
