"""The staff console: server-rendered pages for the clinic's nurses and neurologists."""

from referral_service.api.console.views import console_bp

__all__ = ["console_bp"]
