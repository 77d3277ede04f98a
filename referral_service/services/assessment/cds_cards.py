"""CDS Hooks cards: one per draft order, naming it, saying what the clinic's criteria make of
it; or, when the chart could not be read or the order is for another patient, saying so plainly.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from referral_service.domain.decision import Decision
from referral_service.services.assessment.cds_chart import CHART_PARTS, ChartReading

DECISION_SYSTEM = "https://referral-service.dev/referral-decision"
CHART_NOT_CHECKED = "chart-not-checked"
PATIENT_MISMATCH = "patient-mismatch"
SUMMARY_LIMIT = 140  # CDS Hooks: "<140-character summary message"
LABEL_LIMIT = 48  # of the order's name in a summary, so the decision itself always shows
# Stable card ids: the same hook call (a retry by the EHR) gets the same uuids back.
CARD_NAMESPACE = uuid.UUID("7f1b3c52-4a8e-4f0e-9d4c-2b6a1e9c5d10")


def short(text: str) -> str:
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2] + "…"


def card_uuid(service_id: str, hook_instance: str, order_key: str, topic: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, "|".join((service_id, hook_instance, order_key, topic))))


def order_labels(orders: list[dict[str, Any]]) -> list[str]:
    """What each draft order is called on its card: its code's text or display, and its place
    among the orders when two share a name."""
    names = [_order_name(o) for o in orders]
    counts = Counter(names)
    return [
        f"{name} (order {i + 1} of {len(orders)})" if counts[name] > 1 else name
        for i, name in enumerate(names)
    ]


def _order_name(order: dict[str, Any]) -> str:
    code = order.get("code")
    code = code if isinstance(code, dict) else {}
    codings = [c for c in code.get("coding") or [] if isinstance(c, dict)]
    for name in (code.get("text"), *(c.get("display") for c in codings)):
        if isinstance(name, str) and name.strip():
            name = " ".join(name.split())
            return name if len(name) <= LABEL_LIMIT else name[: LABEL_LIMIT - 1] + "…"
    return f"ServiceRequest/{order.get('id') or '(no id)'}"[:LABEL_LIMIT]


def card(
    topic: str,
    indicator: str,
    summary: str,
    detail: str,
    *,
    source_label: str,
) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),  # replaced by card_uuid() once the card's call is known
        "summary": short(summary),
        "indicator": indicator,
        "detail": detail,
        "source": {"label": source_label, "topic": {"system": DECISION_SYSTEM, "code": topic}},
    }


def cards_for(
    decision: Decision,
    source_label: str,
    *,
    chart: ChartReading | None = None,
    order_label: str | None = None,
) -> list[dict[str, Any]]:
    """The card for one order's decision. A chart that was not fully read never yields
    "meets criteria" nor "add to the chart": only a red flag found is still reported."""
    chart = chart or ChartReading()
    naming = f" — for {order_label}" if order_label else ""
    if not chart.complete and decision.decision != "emergency-redirect":
        summary, detail = _not_checked(chart)
        return [
            card(CHART_NOT_CHECKED, "warning", summary + naming, detail, source_label=source_label)
        ]
    indicator, summary, detail = _CARD_MAKERS[decision.decision](decision)
    if not chart.complete:
        detail += "\n\n" + _unread_parts(chart) + "\nOther red flags may be in what was not read."
    return [card(decision.decision, indicator, summary + naming, detail, source_label=source_label)]


def patient_mismatch_card(order_label: str, *, source_label: str) -> dict[str, Any]:
    return card(
        PATIENT_MISMATCH,
        "warning",
        f"Order is not for the patient whose chart is open: not checked — for {order_label}",
        "The draft order's subject is not the patient of this call (context.patientId), so the "
        "clinic's criteria were not applied to it. Check that the order is on the right "
        "patient's chart.",
        source_label=source_label,
    )


def _not_checked(chart: ChartReading) -> tuple[str, str]:
    summary = "Chart could not be checked: infusion criteria not confirmed"
    checks = "\n".join(f"- {label}" for label in chart.red_flag_checks_not_run())
    detail = (
        "This is not a judgement that the referral meets the clinic's criteria: parts of the "
        "chart could not be read, so the criteria could not be applied.\n\n" + _unread_parts(chart)
    )
    if checks:
        detail += f"\nRed-flag checks that could not run:\n{checks}\n"
    detail += (
        "\nCheck these in the chart before signing. The clinic applies its criteria again "
        "when the referral arrives."
    )
    return summary, detail


def _unread_parts(chart: ChartReading) -> str:
    lines = [f"- {CHART_PARTS[key]}: {why}" for key, why in chart.unread.items()]
    return "Not read:\n" + "\n".join(lines) + "\n"


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


def offer_form(made: dict[str, Any], decision: Decision, form_url: str | None) -> None:
    """A needs-information card links the clinic's referral form (issue 19), which asks the
    missing data in the referrer's words."""
    if decision.decision == "needs-information" and form_url:
        made.setdefault("links", []).append(
            {"label": "The clinic's referral form", "url": form_url, "type": "absolute"}
        )
