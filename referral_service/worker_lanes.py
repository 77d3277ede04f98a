"""Decisions never wait on the EHR: the worker process runs one loop per lane.

The `decisions` lane takes only `evaluate` jobs, which need no EHR when the referral carries
its own data; the `ehr` lane takes every other kind (booking, cancelling, webhook follow-ups,
write-back, sweeps), whose EHR calls may be slow or failing for minutes. Each lane claims from
the one outbox with its own kind filter, so a queue of failing bookings cannot delay a decision,
and a red flag is decided and redirected as soon as a decisions loop is free.

When a lane's job queues work for another lane (an eligible decision its booking), it hands
over in process: the other lane claims at once, without waiting for the database's wake-up.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from referral_service.adapters.db.outbox import Lane
from referral_service.runtime import Runtime
from referral_service.worker import Worker

log = logging.getLogger(__name__)
DECISION_KINDS = ("evaluate",)
DECISIONS = Lane("decisions", DECISION_KINDS)
# Referrers' rest-hook endpoints answer (or time out) at their own pace: their own lane, so a
# slow receiver delays neither a decision nor a booking, and the EHR never delays a notification.
NOTIFICATION_KINDS = ("subscription-handshake", "subscription-notify", "subscription-heartbeat")
NOTIFICATIONS = Lane("notifications", NOTIFICATION_KINDS)
EHR_WORK = Lane("ehr", DECISION_KINDS + NOTIFICATION_KINDS, others=True)
LANES = (DECISIONS, EHR_WORK, NOTIFICATIONS)


class WorkerLanes:
    """One Worker per lane, each in its own thread with its own EHR client (a requests Session
    is not shared between threads); the database engine is shared."""

    def __init__(self, runtime: Any, lanes: tuple[Lane, ...] = LANES) -> None:
        # Policy and clinic loaded now, once: a restarted worker's first decision must not pay
        # for reading them (and a malformed file stops it at start, not at the first job).
        runtime.check_configuration()
        self.workers = [Worker(_lane_runtime(runtime), lane=lane) for lane in lanes]
        for worker in self.workers:
            worker.worker_id = f"{worker.worker_id}:{worker.lane.name}"
            worker.on_queued = self._hand_over

    def _hand_over(self, kinds: set[str]) -> None:
        """A job committed work for other lanes (an evaluation its booking): the lanes that take
        it claim at once, in this process, instead of waiting for PostgreSQL's notification.
        Only a hint, like the notification: the job is in the outbox for any worker."""
        for worker in self.workers:
            if any(worker.lane.takes(kind) for kind in kinds):
                worker.nudge()

    def run_forever(self) -> None:
        threads = [
            threading.Thread(target=w.run_forever, name=f"lane-{w.lane.name}", daemon=True)
            for w in self.workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def _lane_runtime(runtime: Any) -> Any:
    lane_runtime = Runtime(runtime.settings, runtime.engine)
    lane_runtime.now = runtime.now
    for shared in ("policy", "clinic"):  # loaded once; read-only
        if shared in vars(runtime):
            setattr(lane_runtime, shared, vars(runtime)[shared])
    return lane_runtime
