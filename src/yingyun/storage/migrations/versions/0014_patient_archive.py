"""patient archive: SMS codes by phone and purpose (phone_codes, phone_guards) replace verify_codes

A QR link's codes move into `phone_codes` under the purpose "link:<pk>":
one store of one-time codes for the patient archive, staff SMS login and the
links. Codes live five minutes, so the old table is dropped, not copied.

Revision ID: 0014
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phone_codes",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_phone_codes")),
    )
    op.create_index("ix_phone_codes_subject_created", "phone_codes", ["purpose", "phone_hash", "created_at"],
                    unique=False)
    op.create_table(
        "phone_guards",
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("purpose", "phone_hash", name=op.f("pk_phone_guards")),
    )
    op.drop_index("ix_verify_codes_link_created", table_name="verify_codes")
    op.drop_table("verify_codes")


def downgrade() -> None:
    op.create_table(
        "verify_codes",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("link_pk", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["link_pk"], ["links.pk"], name=op.f("fk_verify_codes_link_pk_links"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_verify_codes")),
    )
    op.create_index("ix_verify_codes_link_created", "verify_codes", ["link_pk", "created_at"], unique=False)
    op.drop_table("phone_guards")
    op.drop_index("ix_phone_codes_subject_created", table_name="phone_codes")
    op.drop_table("phone_codes")
