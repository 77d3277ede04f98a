"""referral_service: FHIR intake, eligibility and booking for headache infusion referrals."""

__version__ = "0.1.0"
