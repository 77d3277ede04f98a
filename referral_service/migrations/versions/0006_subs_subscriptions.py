"""Referrers' Subscriptions (Subscriptions R4 Backport, rest-hook) and their numbered events

Revision ID: 0006_subs
Revises: 0005_message
Create Date: 2026-12-03 06:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_subs"
down_revision: str | Sequence[str] | None = "0005_message"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=True),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("content", sa.String(length=16), nullable=False),
        sa.Column("heartbeat_seconds", sa.Integer(), nullable=True),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("events_since_start", sa.Integer(), nullable=False),
        sa.Column("delivered_through", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriptions_sender"), ["sender"], unique=False)
    op.create_table(
        "subscription_events",
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("event_number", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("task", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_events_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subscription_id", "event_number", name=op.f("pk_subscription_events")
        ),
    )


def downgrade() -> None:
    op.drop_table("subscription_events")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_sender"))
    op.drop_table("subscriptions")
