"""The database schema (SQLAlchemy Core tables). Alembic migrations mirror this file."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC out, on SQLite (which drops offsets) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTC_DATETIME = UTCDateTime()

# One row per referral (a ServiceRequest as the referrer sent it, kept verbatim, plus the fields
# the service searches on). `version_id` is the FHIR meta.versionId / ETag.
referrals = Table(
    "referrals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("sender", String(255), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("intent", String(32), nullable=False),
    Column("priority", String(16)),
    Column("patient_ref", String(255)),
    Column("source", String(32), nullable=False),
    Column("resource", JSON, nullable=False),
    Column("supporting", JSON, nullable=False),
    Column("decision", JSON),
    Column("decision_outcome", String(32)),
    Column("authored_on", UTC_DATETIME),
    Column("received_at", UTC_DATETIME, nullable=False),
    Column("last_updated", UTC_DATETIME, nullable=False),
    Index("ix_referrals_sender_status", "sender", "status"),
    Index("ix_referrals_sender_patient", "sender", "patient_ref"),
    Index("ix_referrals_last_updated", "last_updated"),
)

# Every version of every referral, for `_history/{vid}` reads.
referral_versions = Table(
    "referral_versions",
    metadata,
    Column("referral_id", String(64), ForeignKey("referrals.id"), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("resource", JSON, nullable=False),
    Column("recorded_at", UTC_DATETIME, nullable=False),
)

# The idempotency key: one referral per (sender, identifier system|value). Holding it as a
# primary key makes concurrent duplicate POSTs collide in the database, not in application code.
referral_identifiers = Table(
    "referral_identifiers",
    metadata,
    Column("sender", String(255), primary_key=True),
    Column("system", String(512), primary_key=True),
    Column("value", String(512), primary_key=True),
    Column("referral_id", String(64), ForeignKey("referrals.id"), nullable=False, index=True),
)

# The FHIR Task tracking each referral (exactly one per referral).
tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("referral_id", String(64), ForeignKey("referrals.id"), nullable=False, unique=True),
    Column("sender", String(255), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("business_status", String(32), nullable=False),
    Column("resource", JSON, nullable=False),
    Column("last_updated", UTC_DATETIME, nullable=False),
    Index("ix_tasks_sender_status", "sender", "status"),
)

# Appointments: booked locally on our own chairs, or mirrors of appointments booked on the EHR.
# `(referral_id, visit)` is unique: one row per visit of a referral's series, whatever retries do.
appointments = Table(
    "appointments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("referral_id", String(64), ForeignKey("referrals.id"), nullable=False),
    Column("sender", String(255), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("chair_id", String(128), nullable=False),
    Column("protocol", String(64), nullable=False),
    Column("start", UTC_DATETIME, nullable=False),
    Column("end", UTC_DATETIME, nullable=False),
    Column("ehr_reference", String(512)),
    Column("resource", JSON, nullable=False),
    Column("last_updated", UTC_DATETIME, nullable=False),
    Column("visit", Integer, nullable=False, server_default="1"),  # 1..visits; visits+1: due
    Column("visits", Integer, nullable=False, server_default="1"),
    UniqueConstraint("referral_id", "visit", name="uq_appointments_referral_id"),
)

# Local scheduling's overlap guard: an appointment claims every fixed-size cell (clinic
# granularity, e.g. 15 minutes) of its chair time. The primary key makes two appointments on the
# same chair cell impossible, on SQLite as on PostgreSQL, without range types.
chair_claims = Table(
    "chair_claims",
    metadata,
    Column("chair_id", String(128), primary_key=True),
    Column("cell_start", UTC_DATETIME, primary_key=True),
    Column("appointment_id", String(64), ForeignKey("appointments.id"), nullable=False, index=True),
)

# The outbox: durable jobs for the worker (evaluate, book, cancel, webhook follow-ups...).
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("referral_id", String(64), index=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending | running | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", UTC_DATETIME, nullable=False),
    Column("lease_expires_at", UTC_DATETIME),
    Column("locked_by", String(128)),
    Column("last_error", Text),
    Column("dedupe_key", String(255), unique=True),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Index("ix_jobs_status_run_after", "status", "run_after"),
)

# What happened to each referral, in order (no clinical content: codes and ids only).
referral_events = Table(
    "referral_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("referral_id", String(64), ForeignKey("referrals.id"), nullable=False, index=True),
    Column("at", UTC_DATETIME, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
)

# Supporting resources pushed one by one (BSeR REST push): owned by the sender that sent them.
stored_resources = Table(
    "stored_resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("sender", String(255), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("resource", JSON, nullable=False),
    Column("patient_ref", String(255)),
    Column("last_updated", UTC_DATETIME, nullable=False),
    Index("ix_stored_resources_sender_type", "sender", "resource_type"),
    Index("ix_stored_resources_sender_patient", "sender", "patient_ref"),
)

stored_resource_identifiers = Table(
    "stored_resource_identifiers",
    metadata,
    Column("sender", String(255), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("system", String(512), primary_key=True),
    Column("value", String(512), primary_key=True),
    Column("resource_id", String(64), nullable=False),
    Index("ix_stored_resource_identifiers_resource", "resource_type", "resource_id"),
)

# Inbound EHR notifications, recorded before the 202 so nothing acknowledged is lost.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(255), unique=True),
    Column("kind", String(32), nullable=False),
    Column("subscription", String(512)),
    Column("event_number", Integer),
    Column("body", JSON),
    Column("received_at", UTC_DATETIME, nullable=False),
)

# Audit trail as FHIR AuditEvent material: who, what, when, outcome, where from. No clinical data.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("recorded", UTC_DATETIME, nullable=False, index=True),
    Column("action", String(1), nullable=False),  # C R U D E
    Column("subtype", String(64), nullable=False),
    Column("outcome", String(2), nullable=False),  # 0 4 8 12
    Column("agent", String(255), nullable=False),
    Column("source_ip", String(64)),
    Column("entity", String(255)),
    Column("detail", String(255)),
)

# Small key/value state (webhook cursors, last reconciliation time...).
service_state = Table(
    "service_state",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
)

# CDS Hooks cards as issued (ids and kinds only, no patient data), so feedback can be tied to
# them, and that feedback: accepted or overridden, with the override reason's code.
cds_cards = Table(
    "cds_cards",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("topic", String(32), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("issued_at", UTC_DATETIME, nullable=False),
)

cds_feedback = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(36), ForeignKey("cds_cards.uuid"), nullable=False, index=True),
    Column("service_id", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # accepted | overridden
    Column("override_reason_system", String(255)),
    Column("override_reason_code", String(64)),
    Column("outcome_at", UTC_DATETIME, nullable=False),
    Column("received_at", UTC_DATETIME, nullable=False),
)

# FHIR messages taken in by $process-message, by sender and message id (Bundle.id), with the
# response they were given: a resend gets the same response and changes nothing.
received_messages = Table(
    "received_messages",
    metadata,
    Column("sender", String(255), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("response_code", String(16), nullable=False),  # ok | fatal-error
    Column("response", JSON, nullable=False),
    Column("received_at", UTC_DATETIME, nullable=False),
    # SHA-256 of the message as sent (fhir/message.content_digest); none on rows from before it.
    Column("content_digest", String(64)),
)

# Referrers' Subscriptions (Subscriptions R4 Backport, rest-hook): what each asked to be told,
# and where delivery stands. `events_since_start` counts the events recorded for it;
# `delivered_through` is the last event number its endpoint acknowledged.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("sender", String(255), nullable=False, index=True),
    Column("status", String(16), nullable=False),  # requested | active | error | off
    Column("referral_id", String(64)),  # the filter; NULL = every referral of the sender
    Column("endpoint", String(2048), nullable=False),
    Column("base_url", String(2048), nullable=False),  # our FHIR base, for absolute references
    Column("content", String(16), nullable=False),  # empty | id-only | full-resource
    Column("heartbeat_seconds", Integer),
    Column("timeout_seconds", Integer, nullable=False),
    Column("events_since_start", Integer, nullable=False),
    Column("delivered_through", Integer, nullable=False),
    Column("error", Text),
    Column("resource", JSON, nullable=False),  # the Subscription as accepted
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("updated_at", UTC_DATETIME, nullable=False),
    Column("last_sent_at", UTC_DATETIME),
)

# One row per event a Subscription is to be told of, numbered per Subscription: the Task's
# version as it was then (for full-resource payloads).
subscription_events = Table(
    "subscription_events",
    metadata,
    Column(
        "subscription_id",
        String(36),
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("event_number", Integer, primary_key=True),
    Column("referral_id", String(64), nullable=False),
    Column("task_id", String(64), nullable=False),
    Column("task", JSON, nullable=False),
    Column("occurred_at", UTC_DATETIME, nullable=False),
)
