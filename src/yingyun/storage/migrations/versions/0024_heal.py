"""heal_peers, heal_studies: reconciliation that retrieves what the hospital's PACS holds

Revision ID: 0024
Revises: 0023
"""
from alembic import op
import sqlalchemy as sa

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heal_peers",
        sa.Column("ae_title", sa.String(length=16), nullable=False),
        sa.Column("retrieve", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ae_title", name=op.f("pk_heal_peers")),
    )
    op.create_table(
        "heal_studies",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=128), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("log_pk", sa.Integer(), nullable=True),
        sa.Column("pacs_ae", sa.String(length=16), nullable=True),
        sa.Column("retrieve", sa.String(length=8), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("asked", sa.Integer(), nullable=False),
        sa.Column("retrieved", sa.Integer(), nullable=False),
        sa.Column("retrieved_total", sa.Integer(), nullable=False),
        sa.Column("missing_uids", sa.Text(), nullable=False),
        sa.Column("unlisted", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("attempted_at", sa.Float(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_heal_studies")),
        sa.UniqueConstraint("hospital_id", "study_id", name=op.f("uq_heal_studies_hospital_id")),
    )
    op.create_index("ix_heal_studies_state", "heal_studies", ["state", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_heal_studies_state", table_name="heal_studies")
    op.drop_table("heal_studies")
    op.drop_table("heal_peers")
