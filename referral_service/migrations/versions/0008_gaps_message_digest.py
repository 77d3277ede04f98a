"""A received message's content digest, so a different message under a used id is refused

`content_digest` is the SHA-256 of the message Bundle as sent, its envelope's stamps aside
(fhir/message.content_digest). Rows recorded before it have none: their resends are answered
from the record without comparison, as before.

Revision ID: 0008_gaps_message_digest
Revises: 0007_series
Create Date: 2026-12-03 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_gaps_message_digest"
down_revision: str | Sequence[str] | None = "0007_series"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("received_messages") as batch:
        batch.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("received_messages") as batch:
        batch.drop_column("content_digest")
