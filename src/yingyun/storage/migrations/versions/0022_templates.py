"""report templates (body parts, exam items), the knowledge base of report phrases; stable_at indexed for turnaround

Revision ID: 0022
Revises: 0021
"""
from alembic import op
import sqlalchemy as sa

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[object]]:
    return [sa.Column("created_by", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False)]


def _deleted() -> list[sa.Column[object]]:
    return [sa.Column("deleted_at", sa.Float(), nullable=True),
            sa.Column("deleted_by", sa.String(length=64), nullable=True)]


def upgrade() -> None:
    op.create_table(
        "body_parts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False, server_default=""),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_body_parts")),
        sa.UniqueConstraint("scope_kind", "scope_id", "name", "modality", name=op.f("uq_body_parts_scope_kind")),
    )
    op.create_table(
        "exam_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("body_part_id", sa.Integer(), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("template_description", sa.Text(), nullable=False, server_default=""),
        sa.Column("template_conclusion", sa.Text(), nullable=False, server_default=""),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exam_items")),
        sa.UniqueConstraint("scope_kind", "scope_id", "name", "modality", name=op.f("uq_exam_items_scope_kind")),
    )
    op.create_index(op.f("ix_exam_items_body_part_id"), "exam_items", ["body_part_id"])
    op.create_table(
        "kb_folders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("parent_key", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("live_name", sa.Text(), nullable=True),
        *_stamps(),
        *_deleted(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_folders")),
        sa.UniqueConstraint("owner", "parent_key", "live_name", name=op.f("uq_kb_folders_owner")),
    )
    op.create_index(op.f("ix_kb_folders_owner"), "kb_folders", ["owner"])
    op.create_table(
        "kb_texts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("live_title", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        *_stamps(),
        *_deleted(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_texts")),
        sa.UniqueConstraint("folder_id", "live_title", name=op.f("uq_kb_texts_folder_id")),
    )
    op.create_index("ix_dicom_studies_stable_at", "dicom_studies", ["hospital_id", "study_uid", "stable_at"])


def downgrade() -> None:
    op.drop_index("ix_dicom_studies_stable_at", table_name="dicom_studies")
    op.drop_table("kb_texts")
    op.drop_index(op.f("ix_kb_folders_owner"), table_name="kb_folders")
    op.drop_table("kb_folders")
    op.drop_index(op.f("ix_exam_items_body_part_id"), table_name="exam_items")
    op.drop_table("exam_items")
    op.drop_table("body_parts")
