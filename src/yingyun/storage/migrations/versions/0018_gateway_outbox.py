"""gateway_outbox: each gateway's last report of its backlog

Revision ID: 0018
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_outbox",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.Float(), nullable=False),
        sa.Column("pending_records", sa.Integer(), nullable=False),
        sa.Column("pending_instances", sa.Integer(), nullable=False),
        sa.Column("pending_bytes", sa.BigInteger(), nullable=False),
        sa.Column("parked", sa.Integer(), nullable=False),
        sa.Column("oldest_pending_s", sa.Float(), nullable=False),
        sa.Column("last_success_at", sa.Float(), nullable=True),
        sa.Column("previous_pending", sa.Integer(), nullable=True),
        sa.Column("previous_reported_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("gateway_id", name=op.f("pk_gateway_outbox")),
    )


def downgrade() -> None:
    op.drop_table("gateway_outbox")
