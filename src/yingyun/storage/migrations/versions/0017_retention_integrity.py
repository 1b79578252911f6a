"""retention rules, legal holds, purge tombstones; blob digests, scrub state, backup runs

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_rules",
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("outpatient_years", sa.Integer(), nullable=False),
        sa.Column("inpatient_years", sa.Integer(), nullable=False),
        sa.Column("other_years", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("hospital_id", name=op.f("pk_retention_rules")),
    )
    op.create_table(
        "legal_holds",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_legal_holds")),
        sa.UniqueConstraint("study_uid", name=op.f("uq_legal_holds_study_uid")),
    )
    op.create_table(
        "purge_tombstones",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=128), nullable=True),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.Column("purged_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_purge_tombstones")),
    )
    op.create_index("ix_purge_tombstones_hospital_uid", "purge_tombstones", ["hospital_id", "study_uid"])
    op.create_table(
        "blob_digests",
        sa.Column("blob_key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("blob_key", name=op.f("pk_blob_digests")),
    )
    op.create_table(
        "scrub_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pass_started_at", sa.Float(), nullable=True),
        sa.Column("last_pk", sa.Integer(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("checked_bytes", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("last_pass_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scrub_state")),
    )
    op.create_table(
        "backup_runs",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes_copied", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_backup_runs")),
    )


def downgrade() -> None:
    for table in ("backup_runs", "scrub_state", "blob_digests", "purge_tombstones", "legal_holds", "retention_rules"):
        op.drop_table(table)
