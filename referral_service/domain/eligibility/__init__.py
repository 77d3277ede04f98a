"""Eligibility engine: clinical-criteria.md as rules over ReferralFacts -> Decision."""

from referral_service.domain.eligibility.engine import evaluate

__all__ = ["evaluate"]
