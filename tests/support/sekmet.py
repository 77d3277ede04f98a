"""A real SEKMET FHIR R4 server for integration tests: start, wait, stop; plus the pytest fixture.

Use as a pytest plugin (`pytest_plugins = ["tests.support.sekmet"]`) to get `sekmet_server`,
a session-wide server that only accepts SMART Backend Services tokens (scope `system/*.*`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.service import free_port

CLIENT_ID = "referral-service-tests"
KEY_ID = "referral-service-test-key"
STARTUP_SECONDS = 30.0


def _sekmet_executable() -> str:
    candidate = Path(sys.executable).with_name("sekmet")
    found = str(candidate) if candidate.exists() else shutil.which("sekmet")
    if not found:
        pytest.skip("SEKMET (sekmet-fhir) is not installed")
    return found


def write_private_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


@dataclass
class SekmetServer:
    """One SEKMET process; its data dir outlives stop() so a restart keeps the resources."""

    workdir: Path
    port: int = field(default_factory=free_port)
    smart: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.root_url}/auth/token"

    @property
    def client_id(self) -> str:
        return CLIENT_ID

    @property
    def key_id(self) -> str:
        return KEY_ID

    @property
    def private_key_path(self) -> Path:
        return self.workdir / "client_private.pem"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sekmet.log"

    def settings(self) -> dict[str, Any]:
        auth: dict[str, Any] = {"types": ["none"]}
        if self.smart:
            # The client's private key doubles as its registered public key: SEKMET derives
            # the public half from a private PEM.
            auth = {
                "types": ["smart"],
                "token_lifetime": 3600,
                "smart_clients": [
                    {
                        "client_id": CLIENT_ID,
                        "scopes": "system/*.*",
                        "public_key_path": str(self.private_key_path),
                    }
                ],
            }
        return {
            "base_url": self.base_url,
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.workdir / "data"),
            "own_private_key_path": str(self.workdir / "sekmet_private.pem"),
            "simulator": {"enabled": False},
            "log_inbound": False,
            "server_auth": auth,
        }

    def start(self) -> SekmetServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.smart and not self.private_key_path.exists():
            write_private_key(self.private_key_path)
        config = self.workdir / "settings.yaml"
        config.write_text(yaml.safe_dump(self.settings()))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [_sekmet_executable(), "serve", "-c", str(config)],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "SEKMET_CONFIG": str(config)},
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"SEKMET exited early; see {self.log_path}")
            try:
                if requests.get(f"{self.base_url}/metadata", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"SEKMET did not answer /metadata within {STARTUP_SECONDS}s")

    def stop(self) -> None:
        """Terminate, then kill if it lingers (only our own process group)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def env(self) -> dict[str, str]:
        """REFERRAL_* settings pointing the service at this server."""
        env = {"REFERRAL_EHR_BASE_URL": self.base_url, "REFERRAL_EHR_AUTH": "none"}
        if self.smart:
            env.update(
                {
                    "REFERRAL_EHR_AUTH": "smart-backend",
                    "REFERRAL_EHR_CLIENT_ID": CLIENT_ID,
                    "REFERRAL_EHR_TOKEN_URL": self.token_url,
                    "REFERRAL_EHR_KEY_ID": KEY_ID,
                    "REFERRAL_EHR_PRIVATE_KEY_FILE": str(self.private_key_path),
                }
            )
        return env


def start_sekmet(workdir: Path | None = None, *, smart: bool = True) -> SekmetServer:
    return SekmetServer(Path(workdir or tempfile.mkdtemp(prefix="sekmet-")), smart=smart).start()


@pytest.fixture(scope="session")
def sekmet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SekmetServer]:
    server = start_sekmet(tmp_path_factory.mktemp("sekmet"))
    try:
        yield server
    finally:
        server.stop()
