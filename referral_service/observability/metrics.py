"""Prometheus metrics of the referral pipeline, and the functions the rest of the code calls.

Multiprocess-safe: when PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is first
imported (see `referral_service.observability.prepare_multiprocess_dir`), every process writes
its values to files there and `render_latest()` sums them, so a scrape of any gunicorn worker
sees the whole pod. Label values are checked against a small safe pattern: a label must never
carry a patient identifier or free text, and must not explode the number of series.
"""

from __future__ import annotations

import os
import re
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from referral_service.observability import MULTIPROC_ENV

OTHER = "other"
_SAFE_LABEL = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,39}$")

REFERRALS_RECEIVED = Counter(
    "referral_received_total",
    "Referrals accepted for processing, by how they arrived.",
    ["source"],
)
DECISIONS = Counter(
    "referral_decisions_total",
    "Eligibility decisions made, by outcome.",
    ["outcome"],
)
BOOKINGS = Counter(
    "referral_bookings_total",
    "Booking attempts that finished, by outcome.",
    ["outcome"],
)
EHR_REQUEST_SECONDS = Histogram(
    "referral_ehr_request_duration_seconds",
    "Duration of requests to the clinic EHR, by FHIR interaction and HTTP status.",
    ["interaction", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
JOB_CPU_SECONDS = Histogram(
    "referral_job_cpu_seconds",
    "CPU time the worker's thread spent on a job (waiting on the EHR or the database costs "
    "none, so machine load barely moves it), by job kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
WEBHOOK_EVENTS = Counter(
    "referral_webhook_events_total",
    "Subscription notifications received from the EHR, by kind.",
    ["kind"],
)
CDS_FEEDBACK = Counter(
    "referral_cds_feedback_total",
    "CDS Hooks feedback received on our cards, by service and outcome (accepted, overridden).",
    ["service", "outcome"],
)
CDS_CHART_UNREAD = Counter(
    "referral_cds_chart_unread_total",
    "Parts of a chart a CDS Hooks call could not read (its card then says so), by part.",
    ["part"],
)
JOB_RETRIES = Counter(
    "referral_job_retries_total",
    "Job attempts that failed and will be tried again, by job kind and cause (an exception "
    "type: EhrUnavailable rising is the EHR being down, seen from the worker).",
    ["kind", "cause"],
)
JOBS_DEAD_LETTERED = Counter(
    "referral_jobs_dead_lettered_total",
    "Jobs given up for good, by job kind and cause (attempts-exhausted or an exception type).",
    ["kind", "cause"],
)
LEASES_LOST = Counter(
    "referral_job_leases_lost_total",
    "Jobs whose worker lost its lease (another worker took the job over); their outcome was "
    "refused.",
    ["kind"],
)
# Labelled like every other metric here: an unlabelled one would create its multiprocess file at
# import, which a later process preparing the shared directory would delete under it.
EHR_HOLDS_FREED = Counter(
    "referral_ehr_holds_freed_total",
    "EHR Slots held for an Appointment that no longer lists them (or is gone), freed by the "
    "hold sweep, by reason.",
    ["reason"],
)
# Queue figures come from the shared database, so every process that measures them sees the
# same truth: the most recent measurement wins rather than a sum over processes.
QUEUE_DEPTH = Gauge(
    "referral_queue_depth",
    "Outbox jobs waiting to be run.",
    multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_AGE = Gauge(
    "referral_queue_oldest_age_seconds",
    "Age of the oldest waiting outbox job (0 when the queue is empty).",
    multiprocess_mode="mostrecent",
)


def safe_label(value: object) -> str:
    """The value as a label if it is a short lowercase token, else 'other'."""
    text = str(value).strip().lower()
    return text if _SAFE_LABEL.match(text) else OTHER


def referral_received(source: str) -> None:
    REFERRALS_RECEIVED.labels(source=safe_label(source)).inc()


def decision_made(outcome: str) -> None:
    DECISIONS.labels(outcome=safe_label(outcome)).inc()


def booking_finished(outcome: str) -> None:
    BOOKINGS.labels(outcome=safe_label(outcome)).inc()


def observe_ehr_request(interaction: str, status: int | str, seconds: float) -> None:
    """Record one EHR request; `status` is the HTTP status or a token such as 'timeout'."""
    series = EHR_REQUEST_SECONDS.labels(
        interaction=safe_label(interaction), status=safe_label(status)
    )
    series.observe(max(0.0, float(seconds)))


def webhook_event(kind: str) -> None:
    WEBHOOK_EVENTS.labels(kind=safe_label(kind)).inc()


def cds_feedback_received(service: str, outcome: str) -> None:
    CDS_FEEDBACK.labels(service=safe_label(service), outcome=safe_label(outcome)).inc()


def cds_chart_unread(part: str) -> None:
    CDS_CHART_UNREAD.labels(part=safe_label(part)).inc()


def job_retried(kind: str, cause: str) -> None:
    JOB_RETRIES.labels(kind=safe_label(kind), cause=safe_label(cause)).inc()


def job_dead_lettered(kind: str, cause: str) -> None:
    JOBS_DEAD_LETTERED.labels(kind=safe_label(kind), cause=safe_label(cause)).inc()


def job_cpu(kind: str, seconds: float) -> None:
    JOB_CPU_SECONDS.labels(kind=safe_label(kind)).observe(max(0.0, seconds))


def job_lease_lost(kind: str) -> None:
    LEASES_LOST.labels(kind=safe_label(kind)).inc()


def ehr_holds_freed(reason: str, count: int = 1) -> None:
    EHR_HOLDS_FREED.labels(reason=safe_label(reason)).inc(max(0, count))


def set_queue_stats(depth: int, oldest_age_seconds: float | None) -> None:
    QUEUE_DEPTH.set(max(0, int(depth)))
    QUEUE_OLDEST_AGE.set(max(0.0, float(oldest_age_seconds or 0.0)))


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def scrape_registry() -> CollectorRegistry:
    """The registry a scrape reads: all processes' files in multiprocess mode, else this one's."""
    if not multiprocess_enabled():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def render_latest() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric, and its content type."""
    return generate_latest(scrape_registry()), CONTENT_TYPE_LATEST


def serve_metrics(port: int, addr: str = "0.0.0.0") -> threading.Thread:
    """Expose /metrics on its own port, for processes without a web app (the worker)."""
    _server, thread = start_http_server(port, addr=addr, registry=scrape_registry())
    return thread


__all__ = [
    "booking_finished",
    "cds_chart_unread",
    "cds_feedback_received",
    "decision_made",
    "ehr_holds_freed",
    "job_dead_lettered",
    "job_lease_lost",
    "job_retried",
    "multiprocess_enabled",
    "observe_ehr_request",
    "referral_received",
    "render_latest",
    "safe_label",
    "scrape_registry",
    "serve_metrics",
    "set_queue_stats",
    "webhook_event",
]
