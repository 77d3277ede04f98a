"""Eligibility engine: clinical-criteria.md as rules over ReferralFacts -> Decision. Plain
Python, no I/O."""

from referral_service.domain.eligibility.engine import evaluate

__all__ = ["evaluate"]
