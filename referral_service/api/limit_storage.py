"""The in-process rate-limit store: limits' MemoryStorage, with its expired windows swept by the
requests themselves at most once a second.

limits 5.8's MemoryStorage starts a new `threading.Timer` on a hit whenever the last one has run
(it fires after 10 ms), so under steady load most requests pay a thread start (~3.6 ms of a 30 ms
referral in bench/intake_profile.py). The sweep itself is the library's own; only when it runs
changes. `memory://` in REFERRAL_RATE_LIMIT_STORAGE_URL means this store.
"""

from __future__ import annotations

import threading
import time

from limits.storage import MemoryStorage

SCHEME = "swept-memory"
SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._swept_at = time.monotonic()
        self._sweeping = threading.Lock()

    # Replaces MemoryStorage.__schedule_expiry (name-mangled), called on every hit.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < SWEEP_SECONDS or not self._sweeping.acquire(blocking=False):
            return
        try:
            self._swept_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweeping.release()


def storage_uri(configured: str) -> str:
    """`memory://` (the default) -> this store; Redis and the rest as configured."""
    return f"{SCHEME}://" if configured == "memory://" else configured
