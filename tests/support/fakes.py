"""In-memory stand-ins for the ports use cases talk to: the unit of work (with its repositories)
and the schedule. They keep the contracts the real adapters keep (a block commits once or rolls
back; collected events are handled before the commit), so a use case can be specified in
milliseconds; tests/integration proves the real adapters on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from referral_service.adapters.db.messages import Receipt
from referral_service.adapters.db.referrals import ReferralHead, ReferralRow, TaskRow
from referral_service.adapters.db.unit_of_work import KeyTaken
from referral_service.config import Settings
from referral_service.domain.decision import Decision
from referral_service.domain.lifecycle import TaskState
from referral_service.domain.scheduling.booking import NO_SLOT, BookingOutcome, outcome_of
from referral_service.domain.scheduling.clinic import load_clinic
from tests.support.fake_resources import FakeResources


class FakeKeyTaken(Exception):
    """What the real unit of work reports as KeyTaken (a unique key already held)."""


@dataclass
class Store:
    """Everything the fake database holds."""

    referrals: dict[str, ReferralRow] = field(default_factory=dict)
    tasks: dict[str, TaskRow] = field(default_factory=dict)  # by referral id
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    appointments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by referral id
    identifiers: list[tuple[str, str, str, str]] = field(default_factory=list)
    messages: dict[tuple[str, str], Receipt] = field(default_factory=dict)  # (sender, id)
    resources: dict[tuple[str, str], Any] = field(default_factory=dict)  # (type, id)
    resource_identifiers: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    commits: int = 0  # of units of work that may write
    rollbacks: int = 0

    def event_kinds(self, referral_id: str) -> list[str]:
        return [kind for rid, kind, _ in self.events if rid == referral_id]

    def job_kinds(self) -> list[str]:
        return [job["kind"] for job in self.jobs]


class _Referrals:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, **values: Any) -> None:
        fields = {f.name for f in dataclasses.fields(ReferralRow)}
        row = {name: values.get(name) for name in fields}
        self._store.referrals[values["id"]] = ReferralRow(**row)

    def get(self, referral_id: str, *, for_update: bool = False) -> ReferralRow | None:
        return self._store.referrals.get(referral_id)

    def head(self, referral_id: str, *, for_update: bool = False) -> ReferralHead | None:
        row = self._store.referrals.get(referral_id)
        if row is None:
            return None
        return ReferralHead(
            row.id, row.version_id, row.patient_ref, row.source, row.decision, row.received_at
        )

    def record_decision(self, referral_id: str, decision: Decision) -> None:
        row = self._store.referrals[referral_id]
        self._store.referrals[referral_id] = dataclasses.replace(row, decision=decision)


class _Tasks:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, **values: Any) -> None:
        state = TaskState(values["status"], values["business_status"])
        self._store.tasks[values["referral_id"]] = TaskRow(
            values["id"],
            values["referral_id"],
            values["sender"],
            values["version_id"],
            state,
            values["resource"],
            values["last_updated"],
        )

    def for_referral(self, referral_id: str) -> TaskRow | None:
        return self._store.tasks.get(referral_id)

    def get(self, task_id: str) -> TaskRow | None:
        return next((task for task in self._store.tasks.values() if task.id == task_id), None)

    def save(
        self, task_id: str, state: TaskState, resource: dict, version_id: int, now: datetime
    ) -> None:
        for referral_id, task in self._store.tasks.items():
            if task.id == task_id:
                self._store.tasks[referral_id] = dataclasses.replace(
                    task, state=state, resource=resource, version_id=version_id, last_updated=now
                )


class _Events:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, referral_id: str, kind: str, now: datetime, **detail: Any) -> None:
        self._store.events.append((referral_id, kind, detail))

    def list(self, referral_id: str) -> list[dict[str, Any]]:
        return [
            {"kind": kind, "detail": detail}
            for rid, kind, detail in self._store.events
            if rid == referral_id
        ]


class _Jobs:
    def __init__(self, store: Store, attempts: int) -> None:
        self._store = store
        self.attempts = attempts

    def add(self, kind: str, *, now: datetime, dedupe_key: str | None = None, **job: Any) -> None:
        if dedupe_key is not None and any(j["dedupe_key"] == dedupe_key for j in self._store.jobs):
            return
        self._store.jobs.append(
            {"kind": str(kind), "dedupe_key": dedupe_key, "max_attempts": self.attempts, **job}
        )


class _Appointments:
    def __init__(self, store: Store) -> None:
        self._store = store

    def for_referral(self, referral_id: str) -> dict[str, Any] | None:
        found = self._store.appointments.get(referral_id)
        return dict(found) if found is not None else None

    def series(self, referral_id: str) -> list[dict[str, Any]]:
        found = self.for_referral(referral_id)
        return [found] if found is not None else []

    def add(self, values: Mapping[str, Any]) -> None:
        if values["referral_id"] in self._store.appointments:
            raise FakeKeyTaken(values["referral_id"])
        self._store.appointments[values["referral_id"]] = dict(values)

    def update(self, appointment_id: str, values: Mapping[str, Any]) -> None:
        for row in self._store.appointments.values():
            if row["id"] == appointment_id:
                row.update(values)

    def release_cells(self, appointment_id: str) -> None:
        pass  # the fake keeps no chair cells: FakeSchedule decides what is free


class _Identifiers:
    def __init__(self, store: Store) -> None:
        self._store = store

    def claim_new(self, sender: str, referral_id: str, identifiers: list[tuple[str, str]]) -> None:
        held = {(s, system, value) for s, system, value, _ in self._store.identifiers}
        for system, value in identifiers:
            if (sender, system, value) in held:
                # What the database reports for a primary key already held (the real KeyTaken).
                raise KeyTaken("INSERT INTO referral_identifiers", {}, Exception("unique"))
            self._store.identifiers.append((sender, system, value, referral_id))

    def find_referral(self, sender: str, identifiers: Iterable[tuple[str, str]]) -> str | None:
        wanted = set(identifiers)
        for s, system, value, referral_id in self._store.identifiers:
            if s == sender and (system, value) in wanted:
                return referral_id
        return None

    def systems_of(self, referral_id: str) -> list[str]:
        return [system for _, system, _, rid in self._store.identifiers if rid == referral_id]

    def value_of(self, referral_id: str, system: str) -> str | None:
        found = [
            v for _, s, v, rid in self._store.identifiers if rid == referral_id and s == system
        ]
        return found[0] if found else None


class _Messages:
    def __init__(self, store: Store) -> None:
        self._store = store

    def receipt(self, sender: str, message_id: str) -> Receipt | None:
        return self._store.messages.get((sender, message_id))

    def record(
        self, sender: str, message_id: str, code: str, response: dict, now: datetime, digest: str
    ) -> None:
        if (sender, message_id) in self._store.messages:
            raise KeyTaken("INSERT INTO received_messages", {}, Exception("unique"))
        self._store.messages[(sender, message_id)] = Receipt(copy.deepcopy(response), digest)


class FakeUnitOfWork:
    """Changes are made on a copy of the store and put back only by the commit."""

    def __init__(
        self,
        store: Store,
        *,
        attempts: int,
        handlers: Mapping[type, Callable[..., None]],
        read_only: bool = False,
    ) -> None:
        self._store = store
        self._read_only = read_only
        self._attempts = attempts
        self._handlers = handlers
        self._collected: list[Any] = []

    def __enter__(self) -> FakeUnitOfWork:
        self.work = copy.deepcopy(self._store)
        self.referrals = _Referrals(self.work)
        self.tasks = _Tasks(self.work)
        self.events = _Events(self.work)
        self.jobs = _Jobs(self.work, self._attempts)
        self.appointments = _Appointments(self.work)
        self.identifiers = _Identifiers(self.work)
        self.messages = _Messages(self.work)
        self.resources = FakeResources(self.work)
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self._store.rollbacks += 1
            return
        while self._collected:
            event = self._collected.pop(0)
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(self, event)
        if self._read_only:
            assert self.work == self._store, "a read-only unit of work wrote"
            return
        commits = self._store.commits
        self._store.__dict__.update(self.work.__dict__)
        self._store.commits = commits + 1

    def collect(self, event: Any) -> None:
        self._collected.append(event)

    def savepoint(self) -> Any:
        return _Savepoint(self)

    def batched(self) -> Any:
        """Pipelining is a round-trip saving; in memory there is nothing to batch."""
        return contextlib.nullcontext()


class _Savepoint:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def __enter__(self) -> None:
        self._saved = copy.deepcopy(self._uow.work.appointments)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self._uow.work.appointments = self._saved


@dataclass
class Held:
    request: Any
    appointment: dict[str, Any] | None


class FakeSchedule:
    """A schedule whose free chairs the test names: `free` runs, taken in order."""

    def __init__(self, free: Iterable[tuple[str, datetime, datetime]] = ()) -> None:
        self.free = list(free)
        self.unavailable: Exception | None = None
        self.released: list[str] = []

    def find(self, request: Any, window: Any, protocol: Any, now: datetime) -> Held:
        if self.unavailable is not None:
            raise self.unavailable
        if not self.free:
            return Held(request, None)
        chair, start, end = self.free.pop(0)
        row = {
            "id": f"appt-{request.referral_id}",
            "referral_id": request.referral_id,
            "status": "booked",
            "chair_id": chair,
            "start": start,
            "end": end,
            "ehr_reference": None,
            "version_id": 1,
            "resource": {"resourceType": "Appointment", "status": "booked"},
        }
        return Held(request, row)

    def record(self, uow: FakeUnitOfWork, held: Held, now: datetime) -> BookingOutcome:
        if held.appointment is None:
            return NO_SLOT
        uow.appointments.add(held.appointment)
        return outcome_of(held.appointment)

    def release(self, referral_id: str, rows: list[Mapping[str, Any]]) -> dict:
        self.released.append(referral_id)
        return {}


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeRuntime:
    """The use cases' dependencies, with the fakes in place of the database and the schedule."""

    def __init__(self, schedule: FakeSchedule | None = None, **settings: Any) -> None:
        from referral_service.services.ehr import writeback
        from referral_service.services.tasks import TaskChanged

        self.settings = Settings(**settings)
        self.store = Store()
        self.schedule = schedule or FakeSchedule()
        self.clinic = load_clinic(None)
        self.policy = None
        self.ehr_client = None
        self.now = lambda: NOW
        self._handlers = {TaskChanged: writeback.task_changed}

    def unit_of_work(self, *, read_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(
            self.store,
            attempts=self.settings.job_max_attempts,
            handlers=self._handlers,
            read_only=read_only,
        )

    def add_referral(
        self,
        referral_id: str,
        state: TaskState,
        decision: Decision | None = None,
        *,
        source: str = "direct",
    ) -> None:
        self.store.referrals[referral_id] = ReferralRow(
            referral_id,
            "clinic-a",
            1,
            "active",
            "routine",
            f"Patient/{referral_id}-patient",
            source,
            {"resourceType": "ServiceRequest", "id": referral_id},
            [],
            decision,
            None,
            NOW,
            NOW,
        )
        self.store.tasks[referral_id] = TaskRow(
            f"task-{referral_id}", referral_id, "clinic-a", 1, state, {}, NOW
        )
