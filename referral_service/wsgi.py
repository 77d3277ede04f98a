"""WSGI entry point for gunicorn: `referral_service.wsgi:app`."""

from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.observability.logging_setup import configure_logging

_settings = Settings.from_env()
configure_logging(_settings.log_format, _settings.log_level)
app = create_app(_settings)
