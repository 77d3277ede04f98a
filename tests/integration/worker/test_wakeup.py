"""The API wakes an idle worker after committing work (SQLite and PostgreSQL): a referral is
evaluated long before the worker's idle poll would have looked again."""

from __future__ import annotations

from dataclasses import replace

import pytest

from referral_service.adapters.wakeup import WakeListener, free_udp_port
from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.worker import assert_idle_worker_takes_a_new_referral

HEADERS = {"Content-Type": FHIR_JSON}
LONG_POLL_SECONDS = 60.0  # far longer than the test waits: only a wake-up can explain a run


@pytest.fixture
def wake_address() -> tuple[str, int]:
    return ("127.0.0.1", free_udp_port())


@pytest.fixture
def settings(settings, wake_address):
    return replace(settings, worker_wake=wake_address, worker_poll_seconds=LONG_POLL_SECONDS)


@pytest.fixture(autouse=True)
def _close_the_api_side(runtime):
    yield
    if "wake_sender" in runtime.__dict__ and runtime.wake_sender is not None:
        runtime.wake_sender.close()


def test_an_accepted_referral_rings_and_a_refused_one_or_a_read_does_not(
    client, wake_address
) -> None:
    listener = WakeListener(wake_address)
    try:
        assert client.get("/fhir/metadata").status_code == 200
        bad = client.post("/fhir/ServiceRequest", data=b"{", headers=HEADERS)
        assert bad.status_code == 400
        assert listener.wait(0.05) is False
        created = client.post(
            "/fhir/ServiceRequest", json=eligible_referral("wake-1"), headers=HEADERS
        )
        assert created.status_code == 201
        assert listener.wait(5.0) is True
    finally:
        listener.close()


def test_an_idle_worker_takes_a_new_referral_at_once(client, runtime, engine) -> None:
    assert_idle_worker_takes_a_new_referral(client, runtime, engine, "wake-2")
