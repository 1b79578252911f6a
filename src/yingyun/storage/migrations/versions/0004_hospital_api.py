"""internet-hospital API: job queue (callback outbox), doctors, consultations, partner rate limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 04:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("partition", sa.String(length=128), nullable=True),
        sa.Column("order_key", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_jobs")),
        sa.UniqueConstraint("event_id", name=op.f("uq_jobs_event_id")),
    )
    op.create_index("ix_jobs_due", "jobs", ["kind", "state", "next_attempt_at"], unique=False)
    op.create_index("ix_jobs_order", "jobs", ["order_key", "state", "pk"], unique=False)
    op.create_index("ix_jobs_partition", "jobs", ["partition", "state"], unique=False)

    op.create_table(
        "doctors",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("dept", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctors")),
    )
    op.create_index(op.f("ix_doctors_hospital_id"), "doctors", ["hospital_id"], unique=False)

    op.create_table(
        "consultations",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("id_card_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("patient_name", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requesting_doctor_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("scheduled_at", sa.String(length=19), nullable=True),
        sa.Column("meeting_url", sa.Text(), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("concluded_by", sa.String(length=64), nullable=True),
        sa.Column("concluded_at", sa.Float(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("cancelled_at", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_consultations")),
        sa.UniqueConstraint("public_id", name=op.f("uq_consultations_public_id")),
    )
    op.create_index(op.f("ix_consultations_hospital_id"), "consultations", ["hospital_id"], unique=False)
    op.create_index(op.f("ix_consultations_id_card_hash"), "consultations", ["id_card_hash"], unique=False)
    op.create_index(op.f("ix_consultations_phone_hash"), "consultations", ["phone_hash"], unique=False)

    op.create_table(
        "consultation_studies",
        sa.Column("consultation_pk", sa.Integer(), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["consultation_pk"], ["consultations.pk"],
                                name=op.f("fk_consultation_studies_consultation_pk_consultations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("consultation_pk", "hospital_id", "study_id", name=op.f("pk_consultation_studies")),
    )
    op.create_index("ix_consultation_studies_study", "consultation_studies", ["hospital_id", "study_id"], unique=False)

    op.create_table(
        "consultation_experts",
        sa.Column("consultation_pk", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["consultation_pk"], ["consultations.pk"],
                                name=op.f("fk_consultation_experts_consultation_pk_consultations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("consultation_pk", "doctor_id", name=op.f("pk_consultation_experts")),
    )

    op.create_table(
        "consultation_links",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("id_card_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("patient_name", sa.Text(), nullable=True),
        sa.Column("hospitals", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_consultation_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_consultation_links_token_hash")),
    )

    op.create_table(
        "partner_rate_windows",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "window_start", name=op.f("pk_partner_rate_windows")),
    )
    op.create_table(
        "partner_rate_limits",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("per_window", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_partner_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("partner_rate_limits")
    op.drop_table("partner_rate_windows")
    op.drop_table("consultation_links")
    op.drop_table("consultation_experts")
    op.drop_index("ix_consultation_studies_study", table_name="consultation_studies")
    op.drop_table("consultation_studies")
    op.drop_index(op.f("ix_consultations_phone_hash"), table_name="consultations")
    op.drop_index(op.f("ix_consultations_id_card_hash"), table_name="consultations")
    op.drop_index(op.f("ix_consultations_hospital_id"), table_name="consultations")
    op.drop_table("consultations")
    op.drop_index(op.f("ix_doctors_hospital_id"), table_name="doctors")
    op.drop_table("doctors")
    op.drop_index("ix_jobs_partition", table_name="jobs")
    op.drop_index("ix_jobs_order", table_name="jobs")
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_table("jobs")
