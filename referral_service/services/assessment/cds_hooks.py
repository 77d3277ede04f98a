"""CDS Hooks for the referring physician: each draft infusion referral in an `order-sign` or
`order-select` request is evaluated exactly as `$evaluate` does, on the chart the EHR
prefetched (and what it left out, read within the time budget), and gets one card.
The order is a draft in someone else's EHR and is not stored; the cards are recorded by id and
kind only, so the EHR's feedback on them can be tied to them.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from referral_service.adapters.db import cds as store
from referral_service.domain.decision import Decision
from referral_service.fhir.occurrence import requested_occurrence
from referral_service.observability.metrics import cds_chart_unread
from referral_service.services.assessment.cds_cards import (
    DECISION_SYSTEM,
    card_uuid,
    cards_for,
    offer_form,
    order_labels,
    patient_mismatch_card,
    short,
)
from referral_service.services.assessment.cds_chart import PREFETCH, ChartReading, read_chart
from referral_service.services.assessment.cds_ehr import EhrAccess, chart_reader
from referral_service.services.assessment.evaluation import evaluate_document
from referral_service.services.booking.earliest import earliest_infusion

log = logging.getLogger(__name__)

SERVICE_ID = "headache-infusion-referral"
SELECT_SERVICE_ID = f"{SERVICE_ID}-select"
HOOK_OF_SERVICE = {SERVICE_ID: "order-sign", SELECT_SERVICE_ID: "order-select"}
HOOKS = tuple(HOOK_OF_SERVICE.values())

__all__ = ["DECISION_SYSTEM", "PREFETCH", "cards_for", "short"]


def discovery() -> dict[str, Any]:
    described = {
        "title": "Headache infusion referral check",
        "description": "Checks a draft headache infusion referral against the clinic's "
        "eligibility criteria: red flags, missing data, category and protocol.",
        "prefetch": PREFETCH,
    }
    return {
        "services": [
            {"hook": hook, "id": service_id, **described}
            for service_id, hook in HOOK_OF_SERVICE.items()
        ]
    }


@dataclass(frozen=True)
class HookCall:
    hook: str
    patient_id: str
    orders: list[dict[str, Any]]  # the draft ServiceRequests to judge
    prefetch: dict[str, Any]  # prefetch key -> resource or Bundle, as the EHR sent it
    hook_instance: str = ""
    service_id: str = SERVICE_ID


@dataclass(frozen=True)
class ChartSource:
    """Where the parts of the chart the EHR did not prefetch may be read from."""

    access: EhrAccess | None  # an allow-listed FHIR server, or None
    why_not: str  # when access is None: why, in the card's words
    budget_seconds: float


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


def is_for_patient(order: dict[str, Any], patient_id: str) -> bool:
    """The order's subject is Patient/{patient_id} (relative, absolute or versioned)."""
    subject = order.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str):
        return False
    path = reference.split("/_history/")[0].rstrip("/").split("/")
    return path[-2:] == ["Patient", patient_id]


def read_call_chart(call: HookCall, source: ChartSource) -> ChartReading:
    deadline = time.monotonic() + source.budget_seconds
    reader = chart_reader(source.access, call.patient_id, deadline) if source.access else None
    chart = read_chart(call.prefetch, reader, deadline=deadline, no_reader_reason=source.why_not)
    for part in chart.unread:
        cds_chart_unread(part)
    if chart.unread:
        log.warning(
            "CDS call answered without parts of the chart",
            extra={"parts": sorted(chart.unread), "reasons": sorted(set(chart.unread.values()))},
        )
    return chart


def answer(call: HookCall, *, runtime: Any, source: ChartSource) -> dict[str, Any]:
    deadline = time.monotonic() + source.budget_seconds
    label = f"{runtime.clinic.name} referral policy {runtime.policy.version}"
    names = order_labels(call.orders)
    ours = [is_for_patient(order, call.patient_id) for order in call.orders]
    chart = read_call_chart(call, source) if any(ours) else ChartReading()
    cards = []
    for index, (order, name, for_patient) in enumerate(zip(call.orders, names, ours, strict=True)):
        if for_patient:
            decision = _evaluate(order, chart, runtime)
            [made] = cards_for(decision, label, chart=chart, order_label=name)
            if call.hook == "order-sign" and made["source"]["topic"]["code"] == "eligible":
                _add_earliest_infusion(made, order, decision, runtime, deadline)
            offer_form(made, decision, _form_url(runtime))
        else:
            made = patient_mismatch_card(name, source_label=label)
        order_key = str(order.get("id") or f"#{index}")
        topic = made["source"]["topic"]["code"]
        made["uuid"] = card_uuid(call.service_id, call.hook_instance, order_key, topic)
        cards.append(made)
    _record(runtime, call.service_id, cards)
    return {"cards": cards}


def _add_earliest_infusion(
    card: dict[str, Any], order: dict[str, Any], decision: Decision, runtime: Any, deadline: float
) -> None:
    """The date the whole course would start if signed now, from the live schedule, read
    within what is left of the call's budget (none left: the card says nothing of a date)."""
    found = earliest_infusion(
        runtime.schedule_look,
        runtime.clinic,
        decision.protocol or "",
        decision.priority,
        decision.earliest_start,
        runtime.now(),
        deadline - time.monotonic(),
        requested_occurrence(order, runtime.clinic.zone),
    )
    if found is not None:
        card["detail"] += f"\n\n{found.words()}."


def _evaluate(order: dict[str, Any], chart: ChartReading, runtime: Any) -> Decision:
    entries = [{"fullUrl": _full_url(r), "resource": r} for r in chart.resources]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": order}, *entries],
    }
    return evaluate_document(
        bundle, policy=runtime.policy, received_at=runtime.now(), time_zone=runtime.clinic.zone
    )


def _full_url(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id') or uuid.uuid4()}"


def _record(runtime: Any, service_id: str, cards: list[dict[str, Any]]) -> None:
    """Remember the cards for their feedback; the clinician's answer never waits on this."""
    issued = [
        store.IssuedCard(
            c["uuid"], service_id, c["source"]["topic"]["code"], c["indicator"], runtime.now()
        )
        for c in cards
    ]
    try:
        with runtime.unit_of_work() as uow:
            uow.cds_cards.add(issued)
    except Exception as exc:  # a database hiccup must not cost the clinician the answer
        log.warning("CDS cards not recorded", extra={"error": type(exc).__name__})


def _form_url(runtime: Any) -> str | None:
    """Where the clinic's referral form is read: this server's Questionnaire endpoint when its
    public URL is known, else the form's canonical URL."""
    form = runtime.policy.form
    if form is None:
        return None
    base = runtime.settings.public_url
    return f"{base.rstrip('/')}/fhir/Questionnaire/{form.id}" if base else form.url
