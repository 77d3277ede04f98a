"""SEKMET on its own: the interactions a booking makes, timed straight against the EHR with no
service in between (bench/booking.py prints them before and after its bookings)."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import requests

from bench.common import pct
from tests.support.referrals import FHIR_JSON


def probe_ehr(ehr_base: str, rounds: int) -> dict[str, dict[str, float]]:
    """Time the interactions a booking makes, straight against the EHR (ms)."""
    session = requests.Session()
    fhir = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON, "Prefer": "return=representation"}
    schedules = session.get(f"{ehr_base}/Schedule", params={"_count": "200"}, timeout=30).json()
    schedule_id = schedules["entry"][0]["resource"]["id"]
    now = datetime.now(UTC)
    search_params = {
        "schedule": f"Schedule/{schedule_id}",
        "status": "free",
        "start": [
            f"ge{(now + timedelta(hours=2)).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            f"lt{(now + timedelta(days=14)).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        ],
        "_count": "200",
    }
    # A Schedule that is not an infusion chair, so the service never books the probe Slot.
    probe_schedule = session.post(
        f"{ehr_base}/Schedule",
        headers=fhir,
        timeout=30,
        json={"resourceType": "Schedule", "active": False, "actor": [{"display": "bench probe"}]},
    ).json()
    slot = session.post(
        f"{ehr_base}/Slot",
        headers=fhir,
        timeout=30,
        json={
            "resourceType": "Slot",
            "schedule": {"reference": f"Schedule/{probe_schedule['id']}"},
            "status": "busy-unavailable",
            "start": "2030-01-01T10:00:00Z",
            "end": "2030-01-01T10:15:00Z",
        },
    ).json()
    timings: dict[str, list[float]] = defaultdict(list)
    for n in range(rounds):
        started = time.perf_counter()
        pages = 0
        url: str | None = f"{ehr_base}/Slot"
        params: dict | None = search_params
        while url:  # every page, as the service does
            bundle = session.get(url, params=params, headers=fhir, timeout=30).json()
            pages += 1
            url = next(
                (link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"),
                None,
            )
            params = None
        timings["Slot search (all pages)"].append(time.perf_counter() - started)
        timings["  pages"].append(pages)

        started = time.perf_counter()
        response = session.post(
            f"{ehr_base}/Appointment",
            headers=fhir,
            timeout=30,
            json={
                "resourceType": "Appointment",
                "status": "proposed",
                "identifier": [{"system": "https://bench.example/probe", "value": f"probe-{n}"}],
                "start": "2030-01-01T10:00:00Z",
                "end": "2030-01-01T10:15:00Z",
                "participant": [{"actor": {"display": "bench probe"}, "status": "needs-action"}],
            },
        )
        response.raise_for_status()
        timings["Appointment create"].append(time.perf_counter() - started)

        slot["comment"] = f"probe {n}"
        version = slot.get("meta", {}).get("versionId")
        headers = {**fhir, "If-Match": f'W/"{version}"'} if version else fhir
        started = time.perf_counter()
        response = session.put(
            f"{ehr_base}/Slot/{slot['id']}", headers=headers, timeout=30, json=slot
        )
        response.raise_for_status()
        timings["Slot update (If-Match)"].append(time.perf_counter() - started)
        slot = response.json()
    summary = {}
    for name, values in timings.items():
        if name.strip() == "pages":
            summary[name] = {"p50": statistics.median(values), "p95": pct(values, 95)}
        else:
            summary[name] = {"p50": statistics.median(values) * 1000, "p95": pct(values, 95) * 1000}
    return summary
