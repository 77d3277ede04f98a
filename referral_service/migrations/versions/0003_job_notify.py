"""PostgreSQL: NOTIFY referral_jobs whenever a job becomes pending (queued, or put back for a
retry), so idle workers on any host wake at once (LISTEN) instead of waiting out their poll

A row trigger that fires only for rows turning pending (an insert skipped by ON CONFLICT, a
claim or a completion notifies nobody). Notifications are delivered only when the transaction
commits (a rolled-back enqueue wakes nobody), folded by PostgreSQL into one per transaction.
SQLite has no NOTIFY: there the API nudges its local worker over UDP instead.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:40:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "referral_jobs"  # referral_service.adapters.db.job_notify.CHANNEL


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION referral_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status, run_after ON jobs "
        "FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION referral_jobs_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS jobs_notify ON jobs")
    op.execute("DROP FUNCTION IF EXISTS referral_jobs_notify()")
