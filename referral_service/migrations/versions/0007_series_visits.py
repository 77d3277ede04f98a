"""A referral's appointments are a series: one row per visit, `(referral_id, visit)` unique

`visit` numbers the series' visits from 1 (every existing row is visit 1 of 1); `visits` is the
series' length. A repeat course recorded as due is one more row (status `proposed`).

Revision ID: 0007_series
Revises: 0006_subs
Create Date: 2026-12-03 06:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_series"
down_revision: str | Sequence[str] | None = "0006_subs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visit", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("visits", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint(batch_op.f("uq_appointments_referral_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_appointments_referral_id"), ["referral_id", "visit"]
        )


def downgrade() -> None:
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_appointments_referral_id"), type_="unique")
        batch_op.execute(
            "DELETE FROM chair_claims WHERE appointment_id IN "
            "(SELECT id FROM appointments WHERE visit > 1)"
        )
        batch_op.execute("DELETE FROM appointments WHERE visit > 1")
        batch_op.create_unique_constraint(
            batch_op.f("uq_appointments_referral_id"), ["referral_id"]
        )
        batch_op.drop_column("visits")
        batch_op.drop_column("visit")
