"""FHIR messages received by $process-message, with the response each got (idempotent resends)

Holds the response message (ids, codes, references and the referral's Task), keyed by sender
and the message's Bundle.id.

Revision ID: 0005_message
Revises: 0004_cds
Create Date: 2026-12-03 06:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_message"
down_revision: str | Sequence[str] | None = "0004_cds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "received_messages",
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("response_code", sa.String(length=16), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender", "message_id", name=op.f("pk_received_messages")),
    )


def downgrade() -> None:
    op.drop_table("received_messages")
