"""The in-process rate-limit store: no thread started per hit, windows still expire."""

from __future__ import annotations

import threading
import time

from limits import RateLimitItemPerSecond, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from referral_service.api import limit_storage
from referral_service.api.limit_storage import SweptMemoryStorage, storage_uri


def test_memory_uri_means_the_swept_store_and_others_pass_through() -> None:
    assert isinstance(storage_from_string(storage_uri("memory://")), SweptMemoryStorage)
    assert storage_uri("redis://cache:6379/0") == "redis://cache:6379/0"


def test_hits_start_no_threads() -> None:
    limiter = MovingWindowRateLimiter(storage_from_string(storage_uri("memory://")))
    limit = parse("100000/minute")
    time.sleep(0.05)  # the constructor's one timer has run
    before = threading.active_count()
    started: list[int] = []
    for i in range(200):
        assert limiter.hit(limit, "client")
        started.append(threading.active_count())
        if i % 20 == 0:
            time.sleep(0.011)  # past the library's 10 ms timer, which would restart here
    assert max(started) <= before


def test_the_window_still_throttles_and_expired_entries_are_swept(monkeypatch) -> None:
    monkeypatch.setattr(limit_storage, "SWEEP_SECONDS", 0.0)
    storage = SweptMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    limit = RateLimitItemPerSecond(2, 1)
    assert limiter.hit(limit, "client") and limiter.hit(limit, "client")
    assert not limiter.hit(limit, "client")
    time.sleep(1.05)
    assert limiter.hit(limit, "client")  # the window moved on
    assert sum(len(events) for events in storage.events.values()) == 1  # old entries swept
