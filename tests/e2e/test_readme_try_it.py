"""The README's "Try it" block and `referral-service demo`, run as written against a served
instance: a newcomer's first commands can never drift from what the service does."""

from __future__ import annotations

import collections
import subprocess
import time
from pathlib import Path

import requests

from tests.support.service import EXECUTABLE, run_documented_commands, serve

ROOT = Path(__file__).resolve().parents[2]
# What each example becomes (README's comments say the same in words).
EXPECTED = collections.Counter(
    {
        "booked": 3,  # ED chronic migraine, medication overuse (DHE), the primary-care push
        "emergency-redirect": 1,
        "needs-information": 1,
        "needs-review": 1,
        "ineligible": 1,
    }
)
SETTLED = {"booked", "emergency-redirect", "needs-information", "needs-review", "ineligible"}


def try_it_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Try it") :]
    start = section.index("```sh\n") + len("```sh\n")
    return section[start : section.index("```", start)]


def lanes(base_url: str, timeout: float = 60) -> collections.Counter[str]:
    """Where every referral stands once the worker has settled them all."""
    deadline = time.monotonic() + timeout
    counts: collections.Counter[str] = collections.Counter()
    while time.monotonic() < deadline:
        items = requests.get(f"{base_url}/api/referrals", timeout=5).json()["items"]
        counts = collections.Counter(item["business_status"] for item in items)
        if items and set(counts) <= SETTLED:
            return counts
        time.sleep(0.5)
    raise AssertionError(f"referrals did not settle: {counts}")


def test_readme_try_it_runs_as_written(tmp_path) -> None:
    with serve(tmp_path) as service:
        done = run_documented_commands(try_it_block(), service.base_url, ROOT)
        # The last commands print FHIR and staff JSON: the Task search found the pushed referral.
        assert '"resourceType":"Bundle"' in done.stdout.replace(" ", "")
        assert lanes(service.base_url) == EXPECTED


def test_demo_fills_every_lane_and_makes_new_referrals_each_run(tmp_path) -> None:
    with serve(tmp_path) as service:
        for _ in range(2):
            done = subprocess.run(
                [EXECUTABLE, "demo", "--url", service.base_url],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
        # The demo sends every example: the ED order with its placer Task is one more booked.
        demo = EXPECTED + collections.Counter({"booked": 1})
        assert lanes(service.base_url) == demo + demo


def test_demo_against_nothing_says_so_in_one_line(tmp_path) -> None:
    done = subprocess.run(
        [EXECUTABLE, "demo", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr
