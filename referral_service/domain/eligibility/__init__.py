"""Eligibility engine: clinical-criteria.md as rules over ReferralFacts -> Decision.

Its modules are plain Python; an install compiles them with Cython (setup.py) unless told not
to. ENGINE_BUILD says which is running: "compiled" or "source".
"""

from importlib.machinery import EXTENSION_SUFFIXES

from referral_service.domain.eligibility import engine
from referral_service.domain.eligibility.engine import evaluate

ENGINE_BUILD = "compiled" if engine.__file__.endswith(tuple(EXTENSION_SUFFIXES)) else "source"

__all__ = ["ENGINE_BUILD", "evaluate"]
