"""storage_commitments: Storage Commitment requests of the PACS, kept until their result is answered

Revision ID: 0025
Revises: 0024
"""
from alembic import op
import sqlalchemy as sa

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_commitments",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("requester_ae", sa.String(length=16), nullable=False),
        sa.Column("transaction_uid", sa.String(length=64), nullable=False),
        sa.Column("refs", sa.Text(), nullable=False),
        sa.Column("n_requested", sa.Integer(), nullable=False),
        sa.Column("n_committed", sa.Integer(), nullable=True),
        sa.Column("n_failed", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("reported_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_storage_commitments")),
        sa.UniqueConstraint("hospital_id", "requester_ae", "transaction_uid",
                            name="uq_storage_commitments_transaction"),
    )
    op.create_index("ix_storage_commitments_due", "storage_commitments", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_storage_commitments_due", table_name="storage_commitments")
    op.drop_table("storage_commitments")
