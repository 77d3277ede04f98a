"""Settings: every knob of the service, read from the environment (design.md, "Settings")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

DEFAULT_DATABASE_URL = "sqlite:///./referral-service.db"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_OFF = ("0", "off", "false", "no")
# An EHR gives a CDS service a few seconds at order signing; more than this is a mistake.
CDS_BUDGET_LIMIT_SECONDS = 10.0


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


def parse_address(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) of the worker's wake-up socket."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"REFERRAL_WORKER_WAKE must be host:port, not {value!r}")
    return host.strip("[]"), int(port)


def _env_address(env: dict[str, str], name: str) -> tuple[str, int] | None:
    value = env.get(name)
    if not value:
        return None
    try:
        return parse_address(value)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(env: dict[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _env_choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _env_list(env: dict[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _env_seconds(env: dict[str, str], name: str, default: float, most: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= most:
        raise SettingsError(f"{name} must be more than 0 and at most {most:g} seconds")
    return value


def fhir_base(url: str) -> str:
    """A FHIR base URL in one spelling (scheme and host lower case, no default port, no
    trailing slash), so an allow-list entry and the URL a CDS client sends compare equal."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"a FHIR base URL has no credentials, query or fragment: {url!r}")
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    port = parts.port
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path.rstrip('/')}"


def _env_fhir_bases(env: dict[str, str], name: str) -> tuple[str, ...]:
    try:
        return tuple(fhir_base(url) for url in _env_list(env, name))
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    auto_migrate: bool = True
    ehr_base_url: str | None = None
    ehr_auth: str = "none"
    ehr_token: str | None = None
    ehr_client_id: str | None = None
    ehr_token_url: str | None = None
    ehr_private_key_file: str | None = None
    ehr_key_id: str | None = None
    ehr_schedules: tuple[str, ...] = ()
    ehr_transactions: bool = True  # book a series in one transaction Bundle (else visit by visit)
    ehr_timeout_seconds: int = 10
    # How long an EHR booking waits for the clinic's booking lock before retrying later
    booking_lock_seconds: int = 30
    clinic_file: str | None = None
    policy_file: str | None = None
    auth: str = "none"
    allow_insecure: bool = False
    jwks_url: str | None = None
    jwt_public_key_file: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    webhook_secret: str | None = None
    # EHR webhooks (issue 5): who EHR-signed referrals belong to, which ones are ours, how often
    # to look for what the EHR never sent, and whether outcomes go back to the EHR as Tasks.
    ehr_sender: str = "ehr"
    reconcile_minutes: int = 10
    ehr_writeback: bool = True
    intake_filter_performer: tuple[str, ...] = ()
    intake_filter_category: tuple[str, ...] = ()
    intake_filter_code: tuple[str, ...] = ()
    webhook_topic: str | None = None
    webhook_content: str = "id-only"
    log_format: str = "json"
    log_level: str = "INFO"
    public_url: str | None = None
    max_body_bytes: int = 2 * 1024 * 1024
    job_max_attempts: int = 8
    job_lease_seconds: int = 120
    # A running job renews its lease this often (None: a third of the lease; 0: never).
    job_lease_renew_seconds: float | None = None
    job_backoff_base_seconds: float = 2.0
    worker_poll_seconds: float = 0.025
    # Loopback UDP address on which the API nudges an idle worker (set by `serve`).
    worker_wake: tuple[str, int] | None = None
    # PostgreSQL: idle workers LISTEN for the jobs table's NOTIFY (off behind PgBouncer).
    worker_listen: bool = True
    # A file the worker's loop touches every second, for a container liveness probe.
    worker_heartbeat_file: str | None = None
    rate_limit: str = "600/minute"
    rate_limit_storage_url: str = "memory://"
    # A request body must arrive within this many seconds of silence (slow-body clients).
    body_read_timeout_seconds: int = 10
    # CDS Hooks: every read of a referrer's EHR during one hook call ends within this budget,
    # and only FHIR servers on the allow-list are read (none by default: prefetch only).
    cds_ehr_budget_seconds: float = 2.0
    cds_fhir_server_allowlist: tuple[str, ...] = ()
    # Plain-http Subscription endpoints allowed off loopback (URL prefixes; tests, a LAN).
    subscription_allowed_endpoints: tuple[str, ...] = ()
    # The referral form's web links (issue 19): signed with this secret (unset: no web links),
    # valid this many days.
    form_link_secret: str | None = None
    form_link_days: int = 14
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def uses_ehr(self) -> bool:
        return bool(self.ehr_base_url)

    @property
    def lease_renewal_seconds(self) -> float | None:
        """How often a running job renews its lease; None: never (the setting at 0)."""
        if self.job_lease_renew_seconds is None:
            return max(self.job_lease_seconds / 3, 0.05)
        return self.job_lease_renew_seconds or None

    @property
    def writes_back_to_ehr(self) -> bool:
        """REFERRAL_EHR_WRITEBACK: on by default whenever an EHR is configured."""
        return self.ehr_writeback and self.uses_ehr

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        if environ is None:
            load_dotenv(Path.cwd() / ".env", override=False)
            environ = dict(os.environ)
        env = environ
        return cls(
            database_url=env.get("REFERRAL_DATABASE_URL") or DEFAULT_DATABASE_URL,
            auto_migrate=env.get("REFERRAL_AUTO_MIGRATE", "1").lower() not in _OFF,
            ehr_base_url=(env.get("REFERRAL_EHR_BASE_URL") or "").rstrip("/") or None,
            ehr_auth=_env_choice(
                env, "REFERRAL_EHR_AUTH", "none", ("none", "bearer", "smart-backend")
            ),
            ehr_token=env.get("REFERRAL_EHR_TOKEN") or None,
            ehr_client_id=env.get("REFERRAL_EHR_CLIENT_ID") or None,
            ehr_token_url=env.get("REFERRAL_EHR_TOKEN_URL") or None,
            ehr_private_key_file=env.get("REFERRAL_EHR_PRIVATE_KEY_FILE") or None,
            ehr_key_id=env.get("REFERRAL_EHR_KEY_ID") or None,
            ehr_schedules=_env_list(env, "REFERRAL_EHR_SCHEDULES"),
            ehr_transactions=env.get("REFERRAL_EHR_TRANSACTIONS", "on").lower() not in _OFF,
            ehr_timeout_seconds=_env_int(env, "REFERRAL_EHR_TIMEOUT_SECONDS", 10),
            booking_lock_seconds=_env_int(env, "REFERRAL_BOOKING_LOCK_SECONDS", 30),
            clinic_file=env.get("REFERRAL_CLINIC_FILE") or None,
            policy_file=env.get("REFERRAL_POLICY_FILE") or None,
            auth=_env_choice(env, "REFERRAL_AUTH", "none", ("none", "jwt")),
            allow_insecure=env.get("REFERRAL_ALLOW_INSECURE", "") in ("1", "true", "yes"),
            jwks_url=env.get("REFERRAL_JWKS_URL") or None,
            jwt_public_key_file=env.get("REFERRAL_JWT_PUBLIC_KEY_FILE") or None,
            jwt_audience=env.get("REFERRAL_JWT_AUDIENCE") or None,
            jwt_issuer=env.get("REFERRAL_JWT_ISSUER") or None,
            webhook_secret=env.get("REFERRAL_WEBHOOK_SECRET") or None,
            ehr_sender=env.get("REFERRAL_EHR_SENDER") or "ehr",
            reconcile_minutes=_env_int(env, "REFERRAL_RECONCILE_MINUTES", 10),
            ehr_writeback=env.get("REFERRAL_EHR_WRITEBACK", "on").lower() not in _OFF,
            intake_filter_performer=_env_list(env, "REFERRAL_INTAKE_FILTER_PERFORMER"),
            intake_filter_category=_env_list(env, "REFERRAL_INTAKE_FILTER_CATEGORY"),
            intake_filter_code=_env_list(env, "REFERRAL_INTAKE_FILTER_CODE"),
            webhook_topic=env.get("REFERRAL_WEBHOOK_TOPIC") or None,
            webhook_content=_env_choice(
                env, "REFERRAL_WEBHOOK_CONTENT", "id-only", ("id-only", "full-resource", "empty")
            ),
            log_format=_env_choice(env, "REFERRAL_LOG_FORMAT", "json", ("json", "console")),
            log_level=_env_choice(
                env, "REFERRAL_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            public_url=env.get("REFERRAL_PUBLIC_URL") or None,
            max_body_bytes=_env_int(env, "REFERRAL_MAX_BODY_BYTES", 2 * 1024 * 1024),
            job_max_attempts=_env_int(env, "REFERRAL_JOB_MAX_ATTEMPTS", 8),
            job_lease_seconds=_env_int(env, "REFERRAL_JOB_LEASE_SECONDS", 120),
            job_lease_renew_seconds=_env_float(env, "REFERRAL_JOB_LEASE_RENEW_SECONDS"),
            worker_poll_seconds=_env_int(env, "REFERRAL_WORKER_POLL_MS", 25) / 1000,
            worker_wake=_env_address(env, "REFERRAL_WORKER_WAKE"),
            worker_heartbeat_file=env.get("REFERRAL_WORKER_HEARTBEAT_FILE") or None,
            worker_listen=env.get("REFERRAL_WORKER_LISTEN", "1") not in ("0", "false", "no"),
            job_backoff_base_seconds=float(_env_int(env, "REFERRAL_JOB_BACKOFF_SECONDS", 2)),
            rate_limit=env.get("REFERRAL_RATE_LIMIT") or "600/minute",
            rate_limit_storage_url=env.get("REFERRAL_RATE_LIMIT_STORAGE_URL") or "memory://",
            body_read_timeout_seconds=_env_int(env, "REFERRAL_BODY_READ_TIMEOUT", 10),
            cds_ehr_budget_seconds=_env_seconds(
                env, "REFERRAL_CDS_EHR_BUDGET_SECONDS", 2.0, most=CDS_BUDGET_LIMIT_SECONDS
            ),
            cds_fhir_server_allowlist=_env_fhir_bases(env, "REFERRAL_CDS_FHIR_SERVER_ALLOWLIST"),
            subscription_allowed_endpoints=_env_fhir_bases(
                env, "REFERRAL_SUBSCRIPTION_ALLOWED_ENDPOINTS"
            ),
            form_link_secret=env.get("REFERRAL_FORM_LINK_SECRET") or None,
            form_link_days=_env_int(env, "REFERRAL_FORM_LINK_DAYS", 14),
        )

    def check_bind(self, host: str) -> None:
        """Auth off is only safe on loopback (design.md, Process model)."""
        if self.auth == "none" and host not in LOOPBACK_HOSTS and not self.allow_insecure:
            raise SettingsError(
                f"refusing to listen on {host} with REFERRAL_AUTH=none; "
                "use a loopback host, REFERRAL_AUTH=jwt, or REFERRAL_ALLOW_INSECURE=1"
            )
