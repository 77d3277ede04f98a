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
_prepared: Path | None = None


def prepare_multiprocess_dir() -> Path:
    """Make PROMETHEUS_MULTIPROC_DIR point at an existing, empty directory and return it.

    An operator-set directory is created if missing and emptied of the previous run's files
    (stale files from dead processes would otherwise be summed into the counters). With no
    setting, a fresh private temporary directory is created and exported to child processes.
    """
    global _prepared
    configured = os.environ.get(MULTIPROC_ENV)
    # Once per process: a second call (gunicorn re-reading its config on SIGHUP, or `serve`
    # preparing before gunicorn loads this) must not delete files that live processes write.
    if _prepared is not None and configured == str(_prepared):
        return _prepared
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="referral-prometheus-"))
        os.environ[MULTIPROC_ENV] = str(path)
    _prepared = path
    return path


__all__ = ["MULTIPROC_ENV", "prepare_multiprocess_dir"]
