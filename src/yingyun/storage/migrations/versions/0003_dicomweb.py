"""DICOMweb: operator bearer tokens and QIDO-RS indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dicomweb_tokens",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("all_hospitals", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_dicomweb_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_dicomweb_tokens_token_hash")),
    )
    op.create_index("uq_dicomweb_tokens_live_name", "dicomweb_tokens", ["name"], unique=True,
                    sqlite_where=sa.text("revoked_at IS NULL"), postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_table(
        "dicomweb_token_grants",
        sa.Column("token_pk", sa.Integer(), nullable=False),
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["token_pk"], ["dicomweb_tokens.pk"],
                                name=op.f("fk_dicomweb_token_grants_token_pk_dicomweb_tokens"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_pk", "hospital_id", name=op.f("pk_dicomweb_token_grants")),
    )
    op.create_index("ix_dicom_studies_hospital_patient", "dicom_studies", ["hospital_id", "patient_id"], unique=False)
    op.create_index("ix_dicom_studies_hospital_date", "dicom_studies", ["hospital_id", "study_date"], unique=False)
    op.create_index("ix_dicom_studies_study_uid", "dicom_studies", ["study_uid"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # QIDO-RS PatientName prefixes (`Wang*`, `王*`): the folded name and its
        # ideographic and phonetic groups, as qido._folded/_group spell them.
        folded = "replace(replace(lower(coalesce(patient_name_raw, '')), '^', ''), ' ', '')"
        for n, expr in ((1, folded), (2, f"split_part({folded}, '=', 2)"), (3, f"split_part({folded}, '=', 3)")):
            op.execute(f"CREATE INDEX ix_dicom_studies_name_g{n} ON dicom_studies "
                       f"(hospital_id, ({expr}) text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for n in (1, 2, 3):
            op.execute(f"DROP INDEX IF EXISTS ix_dicom_studies_name_g{n}")
    op.drop_index("ix_dicom_studies_study_uid", table_name="dicom_studies")
    op.drop_index("ix_dicom_studies_hospital_date", table_name="dicom_studies")
    op.drop_index("ix_dicom_studies_hospital_patient", table_name="dicom_studies")
    op.drop_table("dicomweb_token_grants")
    op.drop_index("uq_dicomweb_tokens_live_name", table_name="dicomweb_tokens")
    op.drop_table("dicomweb_tokens")
