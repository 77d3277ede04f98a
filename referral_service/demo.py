"""`referral-service demo`: the example referrals of `examples/` sent to a running service over
its real FHIR API, each with business identifiers of this run, so the console shows every lane
(booked, needs review, needs information, redirected, ineligible) within a minute."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FHIR_JSON = "application/fhir+json"
PUSH_ORDER = (
    ("1-patient.json", "PATIENT_ID"),
    ("2-condition.json", "CONDITION_ID"),
    ("3-headache-days.json", "HEADACHE_ID"),
    ("4-migraine-days.json", "MIGRAINE_ID"),
    ("5-service-request.json", "REFERRAL_ID"),
    ("6-task.json", None),
)


class DemoError(Exception):
    pass


def _fresh_identifiers(text: str, run: str) -> str:
    """Every identifier value of the examples (and the conditional-create queries that name them)
    gets this run's suffix, so a second demo makes new referrals instead of finding the old."""
    return re.sub(r'("value": "|\|)((?:ed|pc)-[0-9a-z-]+)', rf"\1\2-{run}", text)


class Sender:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Content-Type"] = FHIR_JSON
        self.session.headers["Accept"] = FHIR_JSON
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def post(self, path: str, body: str) -> dict[str, Any]:
        response = self.session.post(
            f"{self.base_url}/fhir{path}", data=body.encode(), timeout=self.timeout
        )
        if response.status_code not in (200, 201):
            raise DemoError(f"POST /fhir{path}: {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer


def send_examples(
    base_url: str, token: str | None = None, folder: Path = EXAMPLES
) -> Iterator[str]:
    """Sends every example; yields one line per referral sent (no patient data)."""
    if not folder.is_dir():
        raise DemoError(f"no examples folder at {folder} (the demo runs from a source checkout)")
    run = uuid.uuid4().hex[:6]
    sender = Sender(base_url, token)
    for path in sorted(folder.glob("*.json")):
        answer = sender.post("", _fresh_identifiers(path.read_text(), run))
        statuses = [entry.get("response", {}).get("status", "?") for entry in answer["entry"]]
        yield f"{path.stem}: transaction {' '.join(statuses)}"
    push = folder / "primary-care-push"
    if push.is_dir():
        ids: dict[str, str] = {}
        for name, placeholder in PUSH_ORDER:
            text = _fresh_identifiers((push / name).read_text(), run)
            for key, value in ids.items():
                text = text.replace(key, value)
            kind = json.loads(text)["resourceType"]
            created = sender.post(f"/{kind}", text)
            if placeholder:
                ids[placeholder] = created["id"]
        yield f"primary-care-push: ServiceRequest/{ids['REFERRAL_ID']} and its Task"
