"""docs/referring/placer-task.md's "Try it" block, run as written against a served instance:
the transaction with the placer's Task, the PATCH, the 422, the PUT that cancels, the 412."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from tests.support.service import run_documented_commands, serve

ROOT = Path(__file__).resolve().parents[2]


def try_it_block() -> str:
    page = (ROOT / "docs" / "referring" / "placer-task.md").read_text()
    section = page[page.index("## Try it") :]
    start = section.index("```sh\n") + len("```sh\n")
    return section[start : section.index("```", start)]


def _json_stream(text: str) -> tuple[list[dict], str]:
    """The JSON documents curl printed one after another, and what follows the last."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while text.startswith("{", at):
        document, at = decoder.raw_decode(text, at)
        found.append(document)
    return found, text[at:]


def test_the_placer_task_page_runs_as_written(tmp_path) -> None:
    with serve(tmp_path) as service:
        done = run_documented_commands(try_it_block(), service.base_url, ROOT)
        answers, rest = _json_stream(done.stdout)
        transaction, patched, refused, cancelled = answers
        statuses = [e["response"]["status"] for e in transaction["entry"]]
        assert statuses == ["201 Created"] * 6, statuses
        assert (
            transaction["entry"][5]["response"]["location"]
            .split("/fhir/")[1]
            .startswith(f"Task/{patched['id']}/_history/")
        )
        assert [i["value"] for i in patched["identifier"]] == ["ed-task-0007", "ord-0002"]
        assert refused["issue"][0]["expression"] == ["Task.owner"]
        assert cancelled["status"] == "cancelled"
        assert rest.strip() == "412"
        referral = f"ServiceRequest/{cancelled['focus']['reference'].split('/')[-1]}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the worker cancels whatever was booked
            task = requests.get(f"{service.base_url}/fhir/Task/{patched['id']}", timeout=5).json()
            if task["businessStatus"]["text"] == "cancelled":
                break
            time.sleep(0.3)
        assert task["businessStatus"]["text"] == "cancelled", task
        found = requests.get(
            f"{service.base_url}/fhir/Appointment?based-on={referral}", timeout=5
        ).json()
        assert all(e["resource"]["status"] == "cancelled" for e in found.get("entry", []))
