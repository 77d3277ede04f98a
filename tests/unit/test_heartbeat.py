"""The worker heartbeat file: touched at most once a second, never fatal, read by its age."""

from __future__ import annotations

import logging
import os
import time

from referral_service.adapters.heartbeat import Heartbeat, heartbeat_age


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_beat_creates_the_file_and_refreshes_it_once_a_second(tmp_path) -> None:
    path = tmp_path / "beat"
    clock = Clock()
    heartbeat = Heartbeat(path, clock)
    heartbeat.beat()
    assert path.exists()
    os.utime(path, (100.0, 100.0))  # pretend the beat is old
    clock.now += 0.5
    heartbeat.beat()  # within the second: no syscall, the file keeps its old time
    assert path.stat().st_mtime == 100.0
    clock.now += 0.6
    heartbeat.beat()
    assert time.time() - path.stat().st_mtime < 5


def test_an_unwritable_heartbeat_never_raises_and_warns_once(tmp_path, caplog) -> None:
    clock = Clock()
    heartbeat = Heartbeat(tmp_path / "missing-dir" / "beat", clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            heartbeat.beat()
            clock.now += 2
    warnings = [r for r in caplog.records if "heartbeat file not writable" in r.getMessage()]
    assert len(warnings) == 1


def test_heartbeat_age_is_none_without_a_file_and_seconds_since_the_beat(tmp_path) -> None:
    path = tmp_path / "beat"
    assert heartbeat_age(path) is None
    path.touch()
    os.utime(path, (500.0, 500.0))
    assert heartbeat_age(path, now=530.0) == 30.0
