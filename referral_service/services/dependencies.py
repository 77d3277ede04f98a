"""What use cases are given: one object, built by the composition root (`runtime.Runtime`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from referral_service.adapters.db.unit_of_work import SqlUnitOfWork
from referral_service.config import Settings


class Dependencies(Protocol):
    settings: Settings
    now: Callable[[], datetime]

    @property
    def policy(self) -> Any: ...

    @property
    def clinic(self) -> Any: ...

    @property
    def ehr_client(self) -> Any: ...

    @property
    def schedule(self) -> Any: ...

    @property
    def schedule_look(self) -> Any: ...

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork: ...
