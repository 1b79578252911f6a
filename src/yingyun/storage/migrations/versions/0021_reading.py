"""reading_routes, reading_reports, reading_revisions, reading_critical: remote reading (issue 15)

Revision ID: 0021
Revises: 0020
"""
from alembic import op
import sqlalchemy as sa

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_routes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("from_hospital_id", sa.String(length=64), nullable=False),
        sa.Column("to_hospital_id", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_routes")),
    )
    op.create_index(op.f("ix_reading_routes_from_hospital_id"), "reading_routes", ["from_hospital_id"])
    op.create_index(op.f("ix_reading_routes_to_hospital_id"), "reading_routes", ["to_hospital_id"])
    op.create_table(
        "reading_reports",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("centre_id", sa.String(length=64), nullable=False),
        sa.Column("report_number", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("image_description", sa.Text(), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("critical", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("report_doctor_id", sa.String(length=64), nullable=True),
        sa.Column("report_doctor", sa.Text(), nullable=True),
        sa.Column("report_time", sa.Float(), nullable=True),
        sa.Column("audit_doctor_id", sa.String(length=64), nullable=True),
        sa.Column("audit_doctor", sa.Text(), nullable=True),
        sa.Column("audit_time", sa.Float(), nullable=True),
        sa.Column("return_comment", sa.Text(), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_name", sa.Text(), nullable=True),
        sa.Column("locked_at", sa.Float(), nullable=True),
        sa.Column("lock_saved_at", sa.Float(), nullable=True),
        sa.Column("first_submitted_at", sa.Float(), nullable=True),
        sa.Column("first_final_at", sa.Float(), nullable=True),
        sa.Column("returned_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("amended_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_reading_reports")),
        sa.UniqueConstraint("hospital_id", "study_uid", name="uq_reading_reports_hospital_study"),
        sa.UniqueConstraint("hospital_id", "report_number", name="uq_reading_reports_hospital_number"),
    )
    op.create_index("ix_reading_reports_centre_state", "reading_reports", ["centre_id", "state"])
    op.create_table(
        "reading_revisions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reading_pk", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("image_description", sa.Text(), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("critical", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["reading_pk"], ["reading_reports.pk"],
                                name=op.f("fk_reading_revisions_reading_pk_reading_reports"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_reading_revisions")),
    )
    op.create_index(op.f("ix_reading_revisions_reading_pk"), "reading_revisions", ["reading_pk"])
    op.create_table(
        "reading_critical",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reading_pk", sa.Integer(), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("centre_id", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("reported_by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["reading_pk"], ["reading_reports.pk"],
                                name=op.f("fk_reading_critical_reading_pk_reading_reports"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_reading_critical")),
    )
    op.create_index(op.f("ix_reading_critical_reading_pk"), "reading_critical", ["reading_pk"])
    op.create_index(op.f("ix_reading_critical_hospital_id"), "reading_critical", ["hospital_id"])
    op.create_index(op.f("ix_reading_critical_centre_id"), "reading_critical", ["centre_id"])
    op.create_index(op.f("ix_reading_critical_at"), "reading_critical", ["at"])
    op.create_index("ix_dicom_studies_reading", "dicom_studies", ["hospital_id", "stable", "stable_at"])


def downgrade() -> None:
    op.drop_index("ix_dicom_studies_reading", table_name="dicom_studies")
    op.drop_table("reading_critical")
    op.drop_table("reading_revisions")
    op.drop_table("reading_reports")
    op.drop_table("reading_routes")
