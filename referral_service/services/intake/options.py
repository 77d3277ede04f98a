"""What intake needs to know about a referral's arrival: where it came from. (The attempts its
jobs get are the settings' REFERRAL_JOB_MAX_ATTEMPTS, through the unit of work.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IntakeOptions:
    source: str = "direct"
    # Writes the request's audit record in the intake's own transaction, given the unit of work
    # and the new referral's id: an accepted referral then costs one commit, not two.
    audit: Callable[[Any, str], None] | None = None
