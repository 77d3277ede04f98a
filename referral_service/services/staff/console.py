"""What the staff console reads and does: the work queue, infusions per chair and day, the
referral's story in plain words, decisions per day, and cancelling an appointment.

Review and retry live in services/staff.py (shared with the JSON API); this module only adds
the reads a person needs on a screen and the one action the API does not have (cancel).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from referral_service.domain.errors import NotKnown, WrongState
from referral_service.domain.facts import Concept
from referral_service.domain.policy.displays import CodeDisplays
from referral_service.fhir.facts import extract_facts
from referral_service.fhir.scheduling import repeat_course_text
from referral_service.services import jobs
from referral_service.services.dependencies import Dependencies

# The queue's lanes, in the order a nurse works them, and the Task businessStatus each holds.
LANES: dict[str, tuple[str, ...]] = {
    "needs-review": ("needs-review",),
    "needs-information": ("needs-information",),
    "failed-booking": ("no-slot", "ehr-failed"),
}
# Lanes that need no one, shown so staff see where every referral went: name -> businessStatus.
DECIDED = {"booked": "booked", "redirected": "emergency-redirect", "ineligible": "ineligible"}
DECIDED_LIMIT = 10
PRIORITY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
LANE_LIMIT = 200
CHART_DECISIONS = (
    "eligible",
    "needs-review",
    "needs-information",
    "ineligible",
    "emergency-redirect",
)


@dataclass(frozen=True)
class QueueItem:
    referral_id: str
    priority: str
    business_status: str
    category: str
    received_at: datetime


@dataclass(frozen=True)
class Infusion:
    referral_id: str
    chair_id: str
    protocol: str
    start: datetime  # clinic-local
    end: datetime  # clinic-local
    visit: int = 1  # of a series of `visits`
    visits: int = 1

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def series(self) -> str:
        if self.visit > self.visits:  # the rows after the series: a repeat booked at once
            return repeat_course_text(self.visit - self.visits, self.visits)
        return f"visit {self.visit} of {self.visits}" if self.visits > 1 else ""

    @property
    def label(self) -> str:
        """The protocol as the chair Gantt shows it, with its place in the course."""
        if self.visit > self.visits:  # the repeat repeats the series: `visits` visits too
            name = f"{self.protocol} repeat"
            return f"{name} {self.visit - self.visits}/{self.visits}" if self.visits > 1 else name
        return f"{self.protocol} {self.visit}/{self.visits}" if self.visits > 1 else self.protocol


@dataclass(frozen=True)
class RepeatDue:
    """A repeat course recorded as due, its window covering the day shown."""

    referral_id: str
    protocol: str
    earliest: date
    latest: date


@dataclass(frozen=True)
class WorkQueue:
    lanes: dict[str, list[QueueItem]]
    counts: dict[str, int]
    infusions: dict[date, dict[str, list[Infusion]]] = field(default_factory=dict)


def urgency_order(item: QueueItem) -> tuple[int, float]:
    """Most urgent first, then newest first."""
    return PRIORITY_RANK.get(item.priority, len(PRIORITY_RANK)), -item.received_at.timestamp()


def work_queue(runtime: Dependencies, *, lane: str | None, priority: str | None) -> WorkQueue:
    wanted = [lane] if lane in LANES else list(LANES)
    statuses = [status for name in LANES for status in LANES[name]]
    with runtime.unit_of_work(read_only=True) as uow:
        rows = uow.views.waiting(statuses)
    items = [_queue_item(row) for row in rows]
    counts = {name: sum(i.business_status in LANES[name] for i in items) for name in LANES}
    if priority:
        items = [i for i in items if i.priority == priority]
    lanes = {
        name: sorted((i for i in items if i.business_status in LANES[name]), key=urgency_order)[
            :LANE_LIMIT
        ]
        for name in wanted
    }
    today = local_today(runtime)
    days = (today, today + timedelta(days=1))
    return WorkQueue(lanes, counts, {day: infusions_on(runtime, day) for day in days})


def recently_decided(runtime: Dependencies) -> dict[str, list[QueueItem]]:
    """The newest referrals of each decided lane (booked, redirected, ineligible)."""
    with runtime.unit_of_work(read_only=True) as uow:
        return {
            name: [_queue_item(row) for row in uow.views.latest(status, DECIDED_LIMIT)]
            for name, status in DECIDED.items()
        }


def _queue_item(row: Any) -> QueueItem:
    decision = row["decision"] or {}
    return QueueItem(
        referral_id=row["id"],
        priority=row["priority"] or decision.get("priority") or "routine",
        business_status=row["business_status"],
        category=decision.get("category") or "",
        received_at=row["received_at"],
    )


def local_today(runtime: Dependencies) -> date:
    return runtime.now().astimezone(runtime.clinic.zone).date()


def day_bounds(runtime: Dependencies, day: date) -> tuple[datetime, datetime]:
    """The clinic-local calendar day as UTC instants."""
    zone = runtime.clinic.zone
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def infusions_on(runtime: Dependencies, day: date) -> dict[str, list[Infusion]]:
    """Live appointments of one clinic day, per chair (every clinic chair listed, even empty)."""
    start, end = day_bounds(runtime, day)
    with runtime.unit_of_work(read_only=True) as uow:
        rows = uow.views.live_appointments(start, end)
    zone = runtime.clinic.zone
    chairs: dict[str, list[Infusion]] = {chair.id: [] for chair in runtime.clinic.chairs}
    for row in rows:
        infusion = Infusion(
            row["referral_id"],
            row["chair_id"],
            row["protocol"],
            row["start"].astimezone(zone),
            row["end"].astimezone(zone),
            row.get("visit", 1),
            row.get("visits", 1),
        )
        chairs.setdefault(infusion.chair_id, []).append(infusion)
    return chairs


def repeats_due_on(runtime: Dependencies, day: date) -> list[RepeatDue]:
    """Repeat courses due (not yet booked) whose due window includes the day."""
    start, end = day_bounds(runtime, day)
    with runtime.unit_of_work(read_only=True) as uow:
        rows = uow.views.repeats_due(start, end)
    zone = runtime.clinic.zone
    return [
        RepeatDue(
            r["referral_id"],
            r["protocol"],
            r["start"].astimezone(zone).date(),
            (r["end"].astimezone(zone) - timedelta(microseconds=1)).date(),
        )
        for r in rows
    ]


def opening_hours(runtime: Dependencies, day: date) -> tuple[datetime, datetime] | None:
    opening = runtime.clinic.opening_on(day)
    if opening is None:
        return None
    zone = runtime.clinic.zone
    return opening[0].astimezone(zone), opening[1].astimezone(zone)


def decisions_per_day(runtime: Dependencies, days: int = 30) -> list[tuple[date, Counter[str]]]:
    """Referrals received per clinic day, by decision ('pending' before one is made)."""
    today = local_today(runtime)
    first = today - timedelta(days=days - 1)
    since, _ = day_bounds(runtime, first)
    with runtime.unit_of_work(read_only=True) as uow:
        rows = uow.views.decisions_since(since)
    zone = runtime.clinic.zone
    per_day: dict[date, Counter[str]] = {first + timedelta(days=n): Counter() for n in range(days)}
    for received_at, outcome in rows:
        day = received_at.astimezone(zone).date()
        if day in per_day:
            per_day[day][outcome or "pending"] += 1
    return sorted(per_day.items())


# -- the referral in plain words -------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One line of the referral as a clinician reads it, with where it came from."""

    label: str
    value: str
    source: str


@dataclass(frozen=True)
class ReferralStory:
    diagnoses: list[Finding]
    metrics: list[Finding]
    medications: list[Finding]
    patient: str


def concept_name(concept: Concept | None, displays: CodeDisplays | None = None) -> str:
    """A diagnosis, measure or drug as staff read it: the code with its official name from the
    policy ("G43.709 Chronic migraine without aura, ...", with the referrer's display when it
    says something else); else the referrer's own words with the code beside them; else the
    code alone. Never a name the policy and the referrer lack."""
    if concept is None:
        return "unknown"
    if displays is not None:
        for code in concept.codes:
            official = displays.display(code.system, code.code)
            if official:
                named = displays.named(code.system, code.code)
                sent = code.display.strip()
                # words that disagree with the code are worth a clinician's second look
                differs = sent and sent.casefold() != official.casefold()
                return f'{named} (sent as "{sent}")' if differs else named
    words = [c.display for c in concept.codes if c.display] or [concept.text]
    words = [w for w in words if w]
    coded = [
        displays.named(c.system, c.code) if displays else c.code for c in concept.codes if c.code
    ]
    if words and coded:
        return f"{words[0]} ({coded[0]})"
    return (words or coded or ["unknown"])[0]


def referral_story(runtime: Dependencies, referral_id: str) -> ReferralStory:
    with runtime.unit_of_work(read_only=True) as uow:
        row = uow.referrals.get(referral_id)
    if row is None:
        raise NotKnown(f"referral {referral_id} is not known")
    facts = extract_facts(
        row.resource, bundle_resources=row.supporting, received_at=row.received_at
    )
    policy = runtime.policy
    displays = policy.displays
    diagnoses = [
        Finding("reason", concept_name(c, displays), facts.ref) for c in facts.reason_codes
    ]
    diagnoses += [
        Finding(c.clinical_status or "condition", concept_name(c.code, displays), c.ref)
        for c in facts.conditions
    ]
    metrics = [
        Finding(
            _measure(o.code, policy) or concept_name(o.code, displays),
            _observed(o, displays),
            o.ref,
        )
        for o in facts.observations
    ]
    medications = [
        Finding(concept_name(m.medication, displays), _medication_use(m), m.ref)
        for m in facts.medications
    ]
    return ReferralStory(diagnoses, metrics, medications, _patient_line(facts))


# The clinic's own headache measures (the policy's `metrics` codes) in words.
MEASURES = {
    "headache_days": "Headache days per month",
    "migraine_days": "Migraine days per month",
    "debilitating_days": "Debilitating headache days per month",
    "acute_medication_days": "Acute medication days per month",
}


def _measure(code: Concept | None, policy: Any) -> str | None:
    metrics = policy.metrics
    for coding in code.codes if code else ():
        if coding.system == metrics.get("system"):
            for key, words in MEASURES.items():
                if metrics.get(key) == coding.code:
                    return words
    return None


def _observed(observation: Any, displays: CodeDisplays | None = None) -> str:
    if observation.value is not None:
        shown = f"{observation.value:g} {observation.unit}".strip()
    elif observation.value_code is not None:
        shown = concept_name(observation.value_code, displays)
    else:
        shown = "no value"
    if observation.period_start and observation.period_end:
        shown += f" ({observation.period_start:%Y-%m-%d} to {observation.period_end:%Y-%m-%d})"
    elif observation.when:
        shown += f" ({observation.when:%Y-%m-%d})"
    return shown


def _medication_use(medication: Any) -> str:
    shown = medication.status or "status not given"
    if medication.period_start:
        end = f"{medication.period_end:%Y-%m-%d}" if medication.period_end else "now"
        shown += f", {medication.period_start:%Y-%m-%d} to {end}"
    if medication.status_reasons:
        shown += f" ({'; '.join(medication.status_reasons)})"
    return shown


def _patient_line(facts: Any) -> str:
    patient = facts.patient
    if patient is None:
        return "patient not identified in the referral"
    parts = [patient.sex or "sex not given"]
    if patient.birth_date:
        years = (facts.now.date() - patient.birth_date).days // 365
        parts.append(f"{years} years old at referral")
    return ", ".join(parts)


# -- cancelling an appointment -----------------------------------------------------------------


def cancel_appointment(runtime: Dependencies, referral_id: str, *, staff_member: str) -> None:
    """Staff cancel a booked infusion: the worker's cancel job frees the chair (and the EHR
    slots) and closes the Task, exactly as when the referrer revokes the referral."""
    now = runtime.now()
    with runtime.unit_of_work() as uow:
        appointment = uow.appointments.for_referral(referral_id)
        if appointment is None:
            raise NotKnown(f"referral {referral_id} has no appointment")
        if appointment["status"] in ("cancelled", "entered-in-error"):
            raise WrongState("the appointment is already cancelled")
        uow.events.add(referral_id, "cancel-requested", now, by=staff_member)
        jobs.cancel(uow, referral_id, now)
