"""The API's start-up heap is frozen out of the cyclic collector (referral_service/heap.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_wsgi_app_freezes_what_start_up_built(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path / 'heap.db'}",
    }
    probe = "import gc, referral_service.wsgi; print(gc.get_freeze_count())"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # fhir.resources' models alone are tens of thousands of objects
    assert int(done.stdout.strip().splitlines()[-1]) > 20_000
