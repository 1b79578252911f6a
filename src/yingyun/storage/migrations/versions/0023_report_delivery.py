"""report_downlink, ris_endpoints: final reports on their way back to the hospital's RIS

Revision ID: 0023
Revises: 0022
"""
from alembic import op
import sqlalchemy as sa

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_downlink",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("version_pk", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("offered_at", sa.Float(), nullable=True),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("acked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_report_downlink")),
        sa.UniqueConstraint("event_id", name=op.f("uq_report_downlink_event_id")),
    )
    op.create_index("ix_report_downlink_waiting", "report_downlink", ["hospital_id", "acked_at", "pk"])
    op.create_table(
        "ris_endpoints",
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("report_url", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("hospital_id", name=op.f("pk_ris_endpoints")),
    )


def downgrade() -> None:
    op.drop_table("ris_endpoints")
    op.drop_index("ix_report_downlink_waiting", table_name="report_downlink")
    op.drop_table("report_downlink")
