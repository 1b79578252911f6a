"""HL7 v2 over MLLP: senders, the messages received, patient merges

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hl7_senders",
        sa.Column("facility", sa.String(length=180), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("facility", name=op.f("pk_hl7_senders")),
    )
    op.create_index(op.f("ix_hl7_senders_hospital_id"), "hl7_senders", ["hospital_id"])
    op.create_table(
        "hl7_messages",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("facility", sa.String(length=180), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=32), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("raw_enc", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_hl7_messages")),
        sa.UniqueConstraint("facility", "control_id", name=op.f("uq_hl7_messages_facility")),
    )
    op.create_index("ix_hl7_messages_received", "hl7_messages", ["received_at"])
    op.create_table(
        "hl7_merges",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("facility", sa.String(length=180), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("from_patient_id", sa.Text(), nullable=False),
        sa.Column("to_patient_id", sa.Text(), nullable=False),
        sa.Column("study_ids", sa.Text(), nullable=False),
        sa.Column("merged_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_hl7_merges")),
    )
    op.create_index(op.f("ix_hl7_merges_hospital_id"), "hl7_merges", ["hospital_id"])


def downgrade() -> None:
    op.drop_table("hl7_merges")
    op.drop_index("ix_hl7_messages_received", table_name="hl7_messages")
    op.drop_table("hl7_messages")
    op.drop_index(op.f("ix_hl7_senders_hospital_id"), table_name="hl7_senders")
    op.drop_table("hl7_senders")
