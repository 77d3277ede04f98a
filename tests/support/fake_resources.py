"""The in-memory stand-in for the sender's stored resources (`uow.resources`), keeping what the
real adapter keeps: an identifier is held by one resource of a sender at a time (KeyTaken)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from referral_service.adapters.db.resources import StoredResource
from referral_service.adapters.db.unit_of_work import KeyTaken


class FakeResources:
    def __init__(self, store: Any) -> None:
        self._store = store  # tests.support.fakes.Store

    def get(self, resource_type: str, resource_id: str, **_: Any) -> StoredResource | None:
        return self._store.resources.get((resource_type, resource_id))

    def insert_resource(self, resource: StoredResource) -> None:
        self._store.resources[(resource.resource_type, resource.id)] = resource

    save_version = insert_resource

    def claim_identifiers(
        self, sender: str, resource_type: str, resource_id: str, pairs: Iterable[tuple[str, str]]
    ) -> None:
        held = self._store.resource_identifiers
        for key in [k for k, rid in held.items() if k[:2] == (sender, resource_type)]:
            if held[key] == resource_id:
                del held[key]
        for system, value in pairs:
            if (sender, resource_type, system, value) in held:
                raise KeyTaken("INSERT INTO stored_resource_identifiers", {}, Exception("unique"))
            held[(sender, resource_type, system, value)] = resource_id

    def find_by_identifiers(
        self, sender: str, resource_type: str, wanted: Iterable[tuple[str, str]]
    ) -> StoredResource | None:
        for system, value in wanted:
            found = self._store.resource_identifiers.get((sender, resource_type, system, value))
            if found is not None:
                return self.get(resource_type, found)
        return None

    def referrals_waiting_on(self, sender: str, key: str) -> list[str]:
        waiting = ("needs-information", "received")
        return [
            rid
            for rid, row in self._store.referrals.items()
            if row.sender == sender
            and row.status == "active"
            and key in (row.patient_ref, f"ServiceRequest/{rid}")
            and self._store.tasks[rid].state.business_status in waiting
        ]
