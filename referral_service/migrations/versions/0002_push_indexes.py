"""indexes for the REST push pattern: resources and referrals by patient, identifiers by resource

Evaluation gathers a sender's stored resources about the referral's patient, and every pushed
resource looks up that sender's referrals about the same patient; an update replaces the
identifiers one resource holds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 04:55:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_stored_resources_sender_patient", "stored_resources", ["sender", "patient_ref"]
    )
    op.create_index(
        "ix_stored_resource_identifiers_resource",
        "stored_resource_identifiers",
        ["resource_type", "resource_id"],
    )
    op.create_index("ix_referrals_sender_patient", "referrals", ["sender", "patient_ref"])


def downgrade() -> None:
    op.drop_index("ix_referrals_sender_patient", table_name="referrals")
    op.drop_index(
        "ix_stored_resource_identifiers_resource", table_name="stored_resource_identifiers"
    )
    op.drop_index("ix_stored_resources_sender_patient", table_name="stored_resources")
