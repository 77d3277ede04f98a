"""Intake: referrals arriving (direct, in a Bundle, from the EHR), the resources pushed to
support them, new versions and cancellation by the referrer."""
