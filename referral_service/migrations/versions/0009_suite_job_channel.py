"""PostgreSQL: each schema's jobs notify a channel of their own, `referral_jobs:<schema>`

NOTIFY channels belong to the whole database, not to a schema: with migration 0003's fixed
`referral_jobs`, every deployment (or test run) sharing one database woke every other's
workers. The trigger now names its table's schema (TG_TABLE_SCHEMA), and the listener asks
for the same name (referral_service.adapters.db.job_notify.channel_for). A schema name too
long for a channel (63 bytes) is replaced by its md5, so the trigger can never fail an enqueue.

Revision ID: 0009_suite_job_channel
Revises: 0008_gaps_message_digest
Create Date: 2026-12-03 09:20:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_suite_job_channel"
down_revision: str | Sequence[str] | None = "0008_gaps_message_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Mirrors job_notify.channel_for (a test holds them together).
_PER_SCHEMA = """
CREATE OR REPLACE FUNCTION referral_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF octet_length(TG_TABLE_SCHEMA) <= 49 THEN
        PERFORM pg_notify('referral_jobs:' || TG_TABLE_SCHEMA, '');
    ELSE
        PERFORM pg_notify('referral_jobs:' || md5(TG_TABLE_SCHEMA), '');
    END IF;
    RETURN NULL;
END
$$
"""

_SHARED = """
CREATE OR REPLACE FUNCTION referral_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('referral_jobs', '');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PER_SCHEMA)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_SHARED)
