"""Metrics: the recording functions, label hygiene, and multiprocess aggregation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from referral_service.observability import (
    MULTIPROC_ENV,
    PREPARED_ENV,
    metrics,
    prepare_multiprocess_dir,
)


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first so that teardown restores the variable's absence even if a test sets it
    for name in (MULTIPROC_ENV, PREPARED_ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_counters_count_by_label() -> None:
    before = sample("referral_received_total", source="transaction")
    metrics.referral_received("transaction")
    metrics.referral_received("transaction")
    assert sample("referral_received_total", source="transaction") == before + 2

    before = sample("referral_decisions_total", outcome="needs-review")
    metrics.decision_made("needs-review")
    assert sample("referral_decisions_total", outcome="needs-review") == before + 1

    before = sample("referral_bookings_total", outcome="booked")
    metrics.booking_finished("booked")
    assert sample("referral_bookings_total", outcome="booked") == before + 1

    before = sample("referral_webhook_events_total", kind="event-notification")
    metrics.webhook_event("event-notification")
    assert sample("referral_webhook_events_total", kind="event-notification") == before + 1


def test_ehr_request_histogram_buckets_duration_by_interaction_and_status() -> None:
    labels = {"interaction": "search-type", "status": "200"}
    count = sample("referral_ehr_request_duration_seconds_count", **labels)
    fast = sample("referral_ehr_request_duration_seconds_bucket", le="0.1", **labels)
    metrics.observe_ehr_request("search-type", 200, 0.07)
    metrics.observe_ehr_request("search-type", 200, 3.0)
    assert sample("referral_ehr_request_duration_seconds_count", **labels) == count + 2
    assert sample("referral_ehr_request_duration_seconds_bucket", le="0.1", **labels) == fast + 1
    metrics.observe_ehr_request("read", "timeout", 10.0)
    assert sample(
        "referral_ehr_request_duration_seconds_count", interaction="read", status="timeout"
    )


def test_queue_stats_set_gauges_and_clamp_nonsense() -> None:
    metrics.set_queue_stats(7, 12.5)
    assert sample("referral_queue_depth") == 7
    assert sample("referral_queue_oldest_age_seconds") == 12.5
    metrics.set_queue_stats(0, None)
    assert sample("referral_queue_depth") == 0
    assert sample("referral_queue_oldest_age_seconds") == 0


@pytest.mark.parametrize(
    "value",
    ["Jane Doe", "urn:oid:1.2.3|MRN 12345 and a very long identifier value", "", "x" * 41, "a b"],
)
def test_label_values_that_could_carry_data_become_other(value: str) -> None:
    assert metrics.safe_label(value) == "other"


def test_label_values_keep_short_tokens() -> None:
    assert metrics.safe_label("Emergency-Redirect") == "emergency-redirect"
    assert metrics.safe_label(503) == "503"


def test_free_text_never_reaches_the_exposition() -> None:
    metrics.referral_received("Patient Jane Doe 1970-01-01")
    body, content_type = metrics.render_latest()
    assert content_type.startswith("text/plain")
    assert b"Jane" not in body
    assert ("referral_received_total", (("source", "other"),)) in scraped(body)


_INCREMENT = """
from referral_service.observability import metrics
for _ in range({n}):
    metrics.referral_received("rest")
metrics.set_queue_stats({depth}, 1.0)
"""


def _run_child(multiproc_dir: Path, n: int, depth: int) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(multiproc_dir)}
    code = _INCREMENT.format(n=n, depth=depth)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_render_latest_sums_counters_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_child(tmp_path, n=3, depth=4)
    _run_child(tmp_path, n=5, depth=9)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2, "each process writes its own file"

    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    body, _ = metrics.render_latest()
    values = scraped(body)
    assert values[("referral_received_total", (("source", "rest"),))] == 8
    # The queue is one shared truth: the latest measurement, not a sum over processes.
    assert values[("referral_queue_depth", ())] == 9


def test_prepare_multiprocess_dir_empties_stale_files_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "prom"
    monkeypatch.setenv(MULTIPROC_ENV, str(target))
    target.mkdir()
    (target / "counter_123.db").write_bytes(b"stale")
    assert prepare_multiprocess_dir() == target
    assert not list(target.glob("*.db"))
    (target / "counter_456.db").write_bytes(b"live")
    prepare_multiprocess_dir()  # e.g. gunicorn re-reading its config on SIGHUP
    assert (target / "counter_456.db").exists()


def test_a_child_process_keeps_the_files_its_parent_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` prepares the directory, then starts gunicorn (preparing again) and the worker."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    prepare_multiprocess_dir()
    (tmp_path / "counter_789.db").write_bytes(b"the worker's live counters")
    code = "from referral_service.observability import prepare_multiprocess_dir as p; p()"
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ), check=True, timeout=60)
    assert (tmp_path / "counter_789.db").exists()


def test_prepare_multiprocess_dir_creates_a_private_dir_when_unset() -> None:
    path = prepare_multiprocess_dir()
    try:
        assert path.is_dir() and path.name.startswith("referral-prometheus-")
        assert os.environ[MULTIPROC_ENV] == str(path)
    finally:
        path.rmdir()
