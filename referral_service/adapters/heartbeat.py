"""The worker's heartbeat: a file whose modification time the worker's loop refreshes, so that
a container probe can tell a live worker from a hung one without the worker serving HTTP.

The loop beats between jobs and while it waits, not from a thread of its own: a thread would
keep beating for a loop that is stuck. A job runs for at most its lease (another worker takes
it over after that), so a heartbeat older than the lease plus a margin means the loop is hung.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
BEAT_EVERY_SECONDS = 1.0


class Heartbeat:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock
        self._last = float("-inf")
        self._failing = False

    def beat(self) -> None:
        """Touch the file, at most once a second. Never raises: a full or read-only disk must
        not stop the worker (the probe will then report it, which is what an operator needs)."""
        now = self._clock()
        if now - self._last < BEAT_EVERY_SECONDS:
            return
        try:
            self.path.touch()  # creates it, or sets its modification time to now
        except OSError as exc:
            if not self._failing:
                log.warning("heartbeat file not writable: %s", type(exc).__name__)
            self._failing = True
            return
        self._failing = False
        self._last = now


def heartbeat_age(path: str | Path, now: float | None = None) -> float | None:
    """Seconds since the last beat, or None when the file does not exist."""
    try:
        modified = Path(path).stat().st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - modified
