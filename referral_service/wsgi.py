"""WSGI entry point for gunicorn: `referral_service.wsgi:app`."""

import os

from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.heap import freeze_after_startup
from referral_service.observability.logging_setup import configure_logging

_settings = Settings.from_env()
configure_logging(_settings.log_format, _settings.log_level)
# The container runs gunicorn directly: the same rule as `serve`, auth off only on loopback
# unless REFERRAL_ALLOW_INSECURE=1 says it is deliberate.
_settings.check_bind(
    os.environ.get("REFERRAL_BIND", "127.0.0.1:8080").rsplit(":", 1)[0].strip("[]")
)
app = create_app(_settings)
freeze_after_startup()
