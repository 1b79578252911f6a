"""operations statistics: the rollup of closed days, and indexes by arrival time

`GET /api/v1/stats` sums closed days once into stats_daily and reads the
current day live; the indexes make a day a range scan of instances, studies,
reports and dicom_studies by the time they arrived, and the last sync of each
gateway one index lookup.

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_instances_received_at", "instances", ["received_at"]),
    ("ix_studies_created_at", "studies", ["created_at"]),
    ("ix_reports_created_at", "reports", ["created_at"]),
    ("ix_dicom_studies_first_instance_at", "dicom_studies", ["first_instance_at"]),
    ("ix_sync_applied_gateway_applied", "sync_applied", ["gateway_id", "applied_at"]),
)


def upgrade() -> None:
    op.create_table(
        "stats_daily",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("studies", sa.Integer(), nullable=False),
        sa.Column("studies_with_images", sa.Integer(), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "day", "hospital_id", "modality", name="pk_stats_daily"),
    )
    op.create_table(
        "stats_days",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("computed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "day", name="pk_stats_days"),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("stats_days")
    op.drop_table("stats_daily")
