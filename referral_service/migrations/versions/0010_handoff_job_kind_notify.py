"""PostgreSQL: a job's notification names its kind, so only the worker lanes that take that
kind wake (a decision does not wake the EHR and notification lanes to claim nothing)

The payload is the job's `kind`; PostgreSQL still folds identical notifications of one
transaction into one. Listeners treat an empty payload (0009's trigger) as "any kind".

Revision ID: 0010_handoff_job_kind_notify
Revises: 0009_suite_job_channel
Create Date: 2026-12-03 13:50:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_handoff_job_kind_notify"
down_revision: str | Sequence[str] | None = "0009_suite_job_channel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Mirrors job_notify.channel_for (a test holds them together); only the payload changes.
_NOTIFY = """
CREATE OR REPLACE FUNCTION referral_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF octet_length(TG_TABLE_SCHEMA) <= 49 THEN
        PERFORM pg_notify('referral_jobs:' || TG_TABLE_SCHEMA, {payload});
    ELSE
        PERFORM pg_notify('referral_jobs:' || md5(TG_TABLE_SCHEMA), {payload});
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY.format(payload="NEW.kind"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY.format(payload="''"))
