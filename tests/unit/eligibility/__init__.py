"""Eligibility engine tests (clinical-criteria.md as a table of cases)."""
