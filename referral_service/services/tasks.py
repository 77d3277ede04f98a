"""Writing a referral's Task: one place that rebuilds the FHIR Task from what the database
knows (state, decision, appointment, placer identifiers) and bumps its version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from referral_service.adapters.db.referrals import ReferralHead, TaskRow
from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.domain.decision import Decision
from referral_service.domain.eligibility.form_items import items_for
from referral_service.domain.lifecycle import TaskState
from referral_service.domain.referral_form import ReferralForm
from referral_service.fhir.task import FormAsk, TaskView, build_task
from referral_service.services.form_links import FormLinks, needs_round


@dataclass(frozen=True)
class TaskChanged:
    """A referral's Task has a new version (collected by the unit of work: the EHR write-back
    is queued for it in the same transaction)."""

    referral_id: str
    source: str
    version: int
    at: datetime
    sender: str = ""  # the referring system the referral belongs to (its Subscriptions)


def write_task(
    uow: SqlUnitOfWork,
    referral_id: str,
    state: TaskState,
    now: datetime,
    status_note: str | None = None,
    referral: ReferralHead | None = None,
    task: TaskRow | None = None,
) -> dict:
    """`referral`, `task`: as the caller already holds them in this transaction (each saves a
    read)."""
    referral = referral or uow.referrals.head(referral_id)
    task = task or uow.tasks.for_referral(referral_id)
    assert referral is not None and task is not None
    resource = next_task(uow, referral, task, state, now, status_note)
    save_task(uow, referral, task, state, resource, now)
    return resource


def next_task(
    uow: SqlUnitOfWork,
    referral: ReferralHead,
    task: TaskRow,
    state: TaskState,
    now: datetime,
    status_note: str | None = None,
) -> dict:
    """The Task's next version as the database knows the referral now (reads its
    appointments); nothing is written: `save_task` stores it."""
    referral_id = referral.id
    rows = uow.appointments.series(referral_id)
    live = [r for r in rows if r["status"] not in ("cancelled", "proposed")]
    # A booked repeat course is the rows after the series (visit > visits), listed on their own.
    repeat = [r for r in live if r.get("visit", 1) > r.get("visits", 1)]
    live = [r for r in live if r.get("visit", 1) <= r.get("visits", 1)]
    refs = tuple(f"Appointment/{r['id']}" for r in live)
    due = next((r for r in rows if r["status"] == "proposed"), None)
    repeat_due = None
    if due is not None and live:
        period = (due["resource"].get("requestedPeriod") or [{}])[0]
        repeat_due = (period.get("start", ""), period.get("end", ""))
    view = TaskView(
        task_id=task.id,
        referral_id=referral_id,
        version_id=task.version_id + 1,
        last_updated=now,
        authored_on=referral.received_at,
        state=state,
        patient_ref=referral.patient_ref,
        decision=referral.decision,
        appointment_ref=refs[0] if refs else None,
        series_refs=refs if len(refs) > 1 else (),
        repeat_due=repeat_due,
        repeat_refs=tuple(f"Appointment/{r['id']}" for r in repeat) if live else (),
        placer_identifiers=tuple(task.resource.get("identifier", ())),
        placer_inputs=tuple(
            item for item in task.resource.get("input", ()) if "valueReference" in item
        ),
        status_note=status_note,
        form=form_ask(uow, referral_id, referral.version_id, referral.decision, state),
    )
    return build_task(view)


def save_task(
    uow: SqlUnitOfWork,
    referral: ReferralHead,
    task: TaskRow,
    state: TaskState,
    resource: dict,
    now: datetime,
) -> None:
    """Store the Task's next version (`next_task`'s) and tell the change's handlers."""
    version_id = task.version_id + 1
    uow.tasks.save(task.id, state, resource, version_id, now)
    uow.collect(TaskChanged(referral.id, referral.source, version_id, now, task.sender))


def form_ask(
    uow: SqlUnitOfWork,
    referral_id: str,
    version_id: int,
    decision: Decision | None,
    state: TaskState,
) -> FormAsk | None:
    """What of the clinic's form a needs-information Task asks for, and the web form's link
    for this round (None: no form)."""
    form: ReferralForm | None = getattr(uow, "form", None)
    if form is None or decision is None or not decision.missing:
        return None
    days = form.pregnancy_days
    asks = {m: items_for(form, m, days) for m in decision.missing}
    links: FormLinks | None = getattr(uow, "form_links", None)
    link = None
    if links is not None and state.business_status == "needs-information" and any(asks.values()):
        link = links.url(referral_id, needs_round(version_id, decision))
    return FormAsk(form.canonical, asks, link)
