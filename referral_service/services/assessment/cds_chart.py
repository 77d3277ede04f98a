"""The chart a CDS Hooks call is judged on: what the EHR prefetched, and what it left out read
from its FHIR server in parallel before one deadline. What could not be read is named, never
taken for an empty chart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

# The EHR fills these before calling (discovery advertises them); what it leaves out we read
# from its fhirServer ourselves, when we may.
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "medications": "MedicationStatement?patient={{context.patientId}}",
}

# What each part of the chart is, in the words a card shows the clinician.
CHART_PARTS = {
    "patient": "Patient demographics (birth date, sex)",
    "conditions": "Conditions (problem list and diagnoses)",
    "observations": "Observations (vital signs, headache diary, pregnancy status)",
    "medications": "Medications (preventives tried, recent acute medication)",
}

# The red-flag checks (clinical-criteria.md section 2) and the parts of the chart each reads;
# the order's own reason codes and notes are always checked.
RED_FLAG_CHECKS: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "red-flag.coded-finding",
        "red-flag diagnoses (thunderclap headache, haemorrhage or stroke, meningitis, "
        "papilloedema, giant cell arteritis, seizure, focal deficit...)",
        frozenset({"conditions"}),
    ),
    (
        "red-flag.new-headache-high-risk",
        "new headache in a high-risk patient (over 50 at onset, cancer, immunosuppression, "
        "pregnancy or just after childbirth)",
        frozenset({"conditions", "observations", "patient"}),
    ),
    (
        "red-flag.vital-signs",
        "fever or severe hypertension in the last 24 hours",
        frozenset({"observations"}),
    ),
    (
        "red-flag.free-text",
        "red-flag words in condition notes",
        frozenset({"conditions"}),
    ),
)


class ChartUnreadable(Exception):
    """One part of the chart could not be read; `reason` says why in a clinician's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


ChartReader = Callable[[str], Any]  # prefetch key -> resource, list or Bundle; or raises


@dataclass(frozen=True)
class ChartReading:
    resources: list[dict[str, Any]] = field(default_factory=list)
    unread: dict[str, str] = field(default_factory=dict)  # prefetch key -> why not read

    @property
    def complete(self) -> bool:
        return not self.unread

    def red_flag_checks_not_run(self) -> list[str]:
        unread = set(self.unread)
        return [label for _, label, needs in RED_FLAG_CHECKS if needs & unread]


def read_chart(
    prefetch: dict[str, Any],
    reader: ChartReader | None,
    *,
    deadline: float,
    no_reader_reason: str,
) -> ChartReading:
    """The prefetched parts, and the missing ones read in parallel until `deadline`
    (time.monotonic()); a part still unread at the deadline is left, not waited for."""
    given = {key: prefetch[key] for key in PREFETCH if not _not_prefetched(prefetch, key)}
    missing = [key for key in PREFETCH if key not in given]
    if reader is None:
        unread = dict.fromkeys(missing, no_reader_reason)
    else:
        read, unread = _read_in_parallel(reader, missing, deadline)
        given.update(read)
    found = [r for key in PREFETCH if key in given for r in _resources(given[key])]
    return ChartReading(found, unread)


def _not_prefetched(prefetch: dict[str, Any], key: str) -> bool:
    """Left out (the client chose not to or failed to prefetch it), or the OperationOutcome
    some CDS clients put there instead. A null value is the spec's "no data": an empty part."""
    if key not in prefetch:
        return True
    value = prefetch[key]
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


TIMED_OUT = "the EHR did not answer in time"


def _read_in_parallel(
    reader: ChartReader, keys: list[str], deadline: float
) -> tuple[dict[str, Any], dict[str, str]]:
    if not keys:
        return {}, {}
    pool = ThreadPoolExecutor(max_workers=len(keys), thread_name_prefix="cds-chart")
    try:
        futures: dict[Future[Any], str] = {pool.submit(reader, key): key for key in keys}
        done, _late = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        # Reads still running end at the deadline by their own timeouts; nobody waits for them.
        pool.shutdown(wait=False, cancel_futures=True)
    read: dict[str, Any] = {}
    unread: dict[str, str] = {}
    for future, key in futures.items():
        if future not in done:
            unread[key] = TIMED_OUT
        elif isinstance(future.exception(), ChartUnreadable):
            unread[key] = str(future.exception())
        elif future.exception() is not None:
            unread[key] = "the EHR's answer could not be used"
        else:
            read[key] = future.result()
    return read, unread


def _resources(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [r for r in value if isinstance(r, dict) and r.get("resourceType")]
    if not isinstance(value, dict) or value.get("resourceType") == "OperationOutcome":
        return []
    if value.get("resourceType") == "Bundle":
        return [
            e["resource"]
            for e in value.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [value] if value.get("resourceType") else []
