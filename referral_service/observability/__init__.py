"""Observability: Prometheus metrics and the multiprocess directory they share.

This module must not import prometheus_client: prometheus_client decides, when it is first
imported, whether values live in memory or in files under PROMETHEUS_MULTIPROC_DIR. A process
that forks web workers (gunicorn, `referral-service serve`) calls `prepare_multiprocess_dir()`
before anything imports `referral_service.observability.metrics`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Set next to MULTIPROC_ENV once the directory is prepared, and inherited by child processes.
PREPARED_ENV = "REFERRAL_PROMETHEUS_DIR_PREPARED"
PRIVATE_DIR_PREFIX = "referral-prometheus-"


def prepare_multiprocess_dir() -> Path:
    """Make PROMETHEUS_MULTIPROC_DIR point at an existing, empty directory and return it.

    An operator-set directory is created if missing and emptied of the previous run's files
    (stale files from dead processes would otherwise be summed into the counters). With no
    setting, a fresh private temporary directory is created. Both are exported to children.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if configured and os.environ.get(PREPARED_ENV) == configured:
        # Prepared already, by this process (gunicorn re-reading its config on SIGHUP) or by a
        # parent (`serve` starts gunicorn and the worker): live processes write there now.
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix=PRIVATE_DIR_PREFIX))
    os.environ[MULTIPROC_ENV] = os.environ[PREPARED_ENV] = str(path)
    return path


__all__ = ["MULTIPROC_ENV", "PREPARED_ENV", "PRIVATE_DIR_PREFIX", "prepare_multiprocess_dir"]
