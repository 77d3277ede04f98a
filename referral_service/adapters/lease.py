"""The lease a worker holds on the job it is running, as the code the job calls can see it.

The worker sets it for the job's thread; the EHR client asks `check_held()` before every
request and the database fence (adapters/db/job_lease.py) before every commit, so a job whose
lease was lost (another worker took it over) stops acting instead of racing its successor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


class LeaseLost(Exception):
    """Another worker owns this job now: nothing more may be done or committed for it."""


@dataclass(frozen=True)
class Lease:
    job_id: int
    attempt: int  # the fencing token: every claim of a job raises it
    worker_id: str
    kind: str
    lost: threading.Event = field(default_factory=threading.Event, compare=False)
    # Set when the job's completion is written in the transaction about to commit: that
    # conditional update already proved the lease, and it ends it.
    settled: threading.Event = field(default_factory=threading.Event, compare=False)
    # The kinds of the jobs this job queued (outbox.enqueue notes them): once it is done, the
    # worker tells its sibling lanes that take them, so none waits for a wake-up.
    queued: set[str] = field(default_factory=set, compare=False)


_current: ContextVar[Lease | None] = ContextVar("referral_job_lease", default=None)


def current() -> Lease | None:
    return _current.get()


@contextmanager
def holding(lease: Lease) -> Iterator[Lease]:
    token = _current.set(lease)
    try:
        yield lease
    finally:
        _current.reset(token)


def check_held() -> None:
    """Raise LeaseLost when the running job's lease is known to be lost."""
    lease = _current.get()
    if lease is not None and lease.lost.is_set():
        raise LeaseLost(f"job {lease.job_id} attempt {lease.attempt}: lease lost")
