"""The worker wake-up over loopback UDP: a ring wakes a waiting listener at once, silence
lets the timeout run out, and a bad address stops start-up with a clear message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from referral_service.adapters.wakeup import (
    WakeListener,
    WakeSender,
    free_udp_port,
    open_listener,
)
from referral_service.config import Settings, SettingsError, parse_address


@pytest.fixture
def address() -> tuple[str, int]:
    return ("127.0.0.1", free_udp_port())


@pytest.fixture
def listener(address) -> Iterator[WakeListener]:
    listener = WakeListener(address)
    yield listener
    listener.close()


@pytest.fixture
def sender(address) -> Iterator[WakeSender]:
    sender = WakeSender(address)
    yield sender
    sender.close()


def test_a_ring_wakes_the_listener(listener, sender) -> None:
    sender.ring()
    assert listener.wait(5.0) is True


def test_without_a_ring_the_wait_times_out(listener) -> None:
    assert listener.wait(0.02) is False


def test_many_rings_are_consumed_by_one_wake(listener, sender) -> None:
    for _ in range(10):
        sender.ring()
    assert listener.wait(5.0) is True
    assert listener.wait(0.02) is False  # nothing left over to cause spurious wake-ups


def test_interrupt_ends_a_wait_at_once(listener) -> None:
    listener.interrupt()
    assert listener.wait(5.0) is True
    assert listener.wait(0.02) is False


def test_ringing_with_nobody_listening_is_harmless(sender) -> None:
    sender.ring()
    sender.ring()


def test_two_local_workers_can_listen_on_one_address(address) -> None:
    first, second = open_listener(address), open_listener(address)
    assert first is not None and second is not None
    first.close()
    second.close()


def test_no_address_means_polling_only() -> None:
    assert open_listener(None) is None


@pytest.mark.parametrize("value", ["8091", "127.0.0.1:", "127.0.0.1:port", ":8091"])
def test_a_malformed_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_address(value)
    with pytest.raises(SettingsError, match="REFERRAL_WORKER_WAKE"):
        Settings.from_env({"REFERRAL_WORKER_WAKE": value})


def test_the_setting_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"REFERRAL_WORKER_WAKE": "127.0.0.1:8091"})
    assert settings.worker_wake == ("127.0.0.1", 8091)
    assert Settings.from_env({}).worker_wake is None
