"""What intake needs to know about a referral's arrival: where it came from. (The attempts its
jobs get are the settings' REFERRAL_JOB_MAX_ATTEMPTS, through the unit of work.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntakeOptions:
    source: str = "direct"
