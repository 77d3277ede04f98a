"""CDS Hooks for the referring physician: the draft infusion referral in an `order-sign` or
`order-select` request is evaluated exactly as `$evaluate` does, and the decision becomes cards.
Nothing is stored: the order is a draft in someone else's EHR.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from referral_service.domain.decision import Decision
from referral_service.services.assessment.evaluation import evaluate_document

log = logging.getLogger(__name__)

SERVICE_ID = "headache-infusion-referral"
SELECT_SERVICE_ID = f"{SERVICE_ID}-select"
HOOKS = ("order-sign", "order-select")
# The EHR fills these before calling; what it leaves out we read from its fhirServer ourselves.
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "medications": "MedicationStatement?patient={{context.patientId}}",
}
DECISION_SYSTEM = "https://referral-service.dev/referral-decision"
SUMMARY_LIMIT = 140  # CDS Hooks: "<140-character summary message"
FETCH_LIMIT = 200  # resources per prefetch key read from the EHR; a chart is smaller than this


def discovery() -> dict[str, Any]:
    described = {
        "title": "Headache infusion referral check",
        "description": "Checks a draft headache infusion referral against the clinic's "
        "eligibility criteria: red flags, missing data, category and protocol.",
        "prefetch": PREFETCH,
    }
    return {
        "services": [
            {"hook": "order-sign", "id": SERVICE_ID, **described},
            {"hook": "order-select", "id": SELECT_SERVICE_ID, **described},
        ]
    }


@dataclass(frozen=True)
class HookCall:
    hook: str
    patient_id: str
    orders: list[dict[str, Any]]  # the draft ServiceRequests to judge
    prefetch: dict[str, Any]  # key -> resource or Bundle (None: not prefetched)


Fetcher = Callable[[str], Any]  # prefetch key -> resource, list of resources, or None


def draft_referrals(context: dict[str, Any], hook: str) -> list[dict[str, Any]]:
    """The draft ServiceRequests; for order-select only the ones the physician selected."""
    entries = (context.get("draftOrders") or {}).get("entry") or []
    orders = [
        e["resource"]
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "ServiceRequest"
    ]
    selected = set(context.get("selections") or ()) if hook == "order-select" else set()
    chosen = [o for o in orders if f"ServiceRequest/{o.get('id')}" in selected]
    return chosen or orders


def supporting_resources(call: HookCall, fetch: Fetcher | None) -> list[dict[str, Any]]:
    """Everything prefetched, and what the EHR left out read through `fetch`."""
    found: list[dict[str, Any]] = []
    for key in PREFETCH:
        value = call.prefetch.get(key)
        if _not_prefetched(value) and fetch is not None:
            value = fetch(key)
        found.extend(_resources(value))
    return found


def _not_prefetched(value: Any) -> bool:
    """Absent, null, or the OperationOutcome a CDS client may put where a prefetch failed."""
    return value is None or (
        isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"
    )


def _resources(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [r for r in value if isinstance(r, dict) and r.get("resourceType")]
    if not isinstance(value, dict):
        return []
    if _not_prefetched(value):
        return []
    if value.get("resourceType") == "Bundle":
        return [
            e["resource"]
            for e in value.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [value] if value.get("resourceType") else []


def evaluate_call(call: HookCall, *, runtime: Any, fetch: Fetcher | None) -> list[Decision]:
    supporting = supporting_resources(call, fetch)
    entries = [{"fullUrl": _full_url(r), "resource": r} for r in supporting]
    decisions = []
    for order in call.orders:
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": order}, *entries],
        }
        decisions.append(
            evaluate_document(bundle, policy=runtime.policy, received_at=runtime.now())
        )
    return decisions


def _full_url(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id') or uuid.uuid4()}"


def ehr_fetcher(client: Any, patient_id: str) -> Fetcher:
    """Reads a missing prefetch key from the EHR; a failed read is missing data, not an error."""
    from referral_service.adapters.ehr.errors import EhrError

    def fetch(key: str) -> Any:
        try:
            if key == "patient":
                return client.read("Patient", patient_id)
            kind = PREFETCH[key].split("?")[0]
            found = client.search(kind, {"patient": patient_id, "_count": 100})
            return list(itertools.islice(found, FETCH_LIMIT))
        except EhrError as exc:
            log.warning("prefetch read failed", extra={"key": key, "error": type(exc).__name__})
            return None

    return fetch


# -- cards -------------------------------------------------------------------------------------


def short(text: str) -> str:
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2] + "…"


def cards_for(decision: Decision, source_label: str) -> list[dict[str, Any]]:
    source = {
        "label": source_label,
        "topic": {"system": DECISION_SYSTEM, "code": decision.decision},
    }
    maker = _CARD_MAKERS[decision.decision]
    indicator, summary, detail = maker(decision)
    return [
        {
            "uuid": str(uuid.uuid4()),
            "summary": short(summary),
            "indicator": indicator,
            "detail": detail,
            "source": source,
        }
    ]


def _eligible(d: Decision) -> tuple[str, str, str]:
    summary = f"Meets criteria for outpatient infusion ({d.category}, {d.protocol})"
    detail = f"Priority {d.priority}; protocol {d.protocol}."
    if d.excluded_drugs:
        detail += f" Drugs left out of the protocol: {', '.join(d.excluded_drugs)}."
    return "info", summary, detail + _reasons(d, ("met",))


def _needs_information(d: Decision) -> tuple[str, str, str]:
    summary = f"Missing data for an infusion referral: {len(d.missing)} item(s) to add"
    missing = "\n".join(f"- {item}" for item in d.missing)
    detail = (
        f"The clinic cannot decide yet. Missing:\n{missing}\n\nSuggestion: add these to the "
        "chart or the order's supporting information before signing, so the referral is "
        "not put on hold."
    )
    return "warning", summary, detail


def _emergency(d: Decision) -> tuple[str, str, str]:
    summary = "Red flags: send to the emergency department, not outpatient infusion"
    flags = [r for r in d.reasons if r.rule.startswith("red-flag.") and r.outcome == "met"]
    detail = "Red flags found:\n" + "\n".join(f"- {r.detail}" for r in flags)
    return "critical", summary, detail


def _needs_review(d: Decision) -> tuple[str, str, str]:
    summary = f"A clinic neurologist will review this referral ({d.category})"
    return (
        "info",
        summary,
        "The criteria leave this to a clinician." + _reasons(d, ("not-met", "unknown")),
    )


def _ineligible(d: Decision) -> tuple[str, str, str]:
    summary = "Does not meet criteria for outpatient headache infusion"
    return "warning", summary, "Why:" + _reasons(d, ("not-met",))


def _reasons(d: Decision, outcomes: tuple[str, ...]) -> str:
    lines = [f"- {r.detail}" for r in d.reasons if r.outcome in outcomes]
    return ("\n" + "\n".join(lines)) if lines else ""


_CARD_MAKERS: dict[str, Callable[[Decision], tuple[str, str, str]]] = {
    "eligible": _eligible,
    "needs-information": _needs_information,
    "emergency-redirect": _emergency,
    "needs-review": _needs_review,
    "ineligible": _ineligible,
}


def answer(call: HookCall, *, runtime: Any, fetch: Fetcher | None) -> dict[str, Any]:
    label = f"{runtime.clinic.name} referral policy {runtime.policy.version}"
    decisions = evaluate_call(call, runtime=runtime, fetch=fetch)
    return {"cards": [card for d in decisions for card in cards_for(d, label)]}
