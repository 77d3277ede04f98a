"""Worker wake-up: the API nudges an idle worker over a loopback UDP datagram after it has
committed work, so a new referral does not wait out the worker's idle poll.

Only a hint: the job is already in the outbox table, and a lost or unsent datagram costs at
most one poll interval. `serve` picks the address (REFERRAL_WORKER_WAKE) for its API and
worker; workers elsewhere, or with none configured, keep polling.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket

log = logging.getLogger(__name__)
_DRAIN_LIMIT = 64


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class WakeSender:
    """The API side: one unconnected datagram socket, never blocking, never raising."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # no worker listening, or a full buffer: it polls
            self._socket.sendto(b"!", self.address)

    def close(self) -> None:
        self._socket.close()


class Interrupt:
    """A self-pipe that ends a worker's select() early, so a stopping worker need not wait out
    its poll. Its read end goes into the select; ring() is safe from a signal handler."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # closed already, or a wake-up already pending
            self._writer.send(b"!")

    def drain(self) -> None:
        _drain(self.reader)

    def close(self) -> None:
        self.reader.close()
        self._writer.close()


class WakeListener:
    """The worker side: wait() returns when rung or after the timeout, whichever is first.
    SO_REUSEPORT lets several local workers listen; the kernel wakes one per datagram."""

    def __init__(self, address: tuple[str, int]) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._socket.bind(address)
        self._socket.setblocking(False)
        self._interrupt = Interrupt()

    def wait(self, timeout: float) -> bool:
        """True when woken by a datagram or interrupt() (every pending one is consumed)."""
        ready, _, _ = select.select([self._socket, self._interrupt.reader], [], [], timeout)
        for sock in ready:
            _drain(sock)
        return bool(ready)

    def interrupt(self) -> None:
        self._interrupt.ring()

    def close(self) -> None:
        self._socket.close()
        self._interrupt.close()


def _drain(sock: socket.socket) -> None:
    for _ in range(_DRAIN_LIMIT):
        try:
            sock.recv(16)
        except BlockingIOError:
            return


def open_listener(address: tuple[str, int] | None) -> WakeListener | None:
    if address is None:
        return None
    try:
        return WakeListener(address)
    except OSError as exc:
        log.warning("worker wake-up unavailable (%s); polling only", type(exc).__name__)
        return None
