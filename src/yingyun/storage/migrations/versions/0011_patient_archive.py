"""patient archive: accounts, sessions, members, shares of images or report only; SMS codes by phone and purpose

A QR link's codes move into `phone_codes` under the purpose "link:<pk>":
one store of one-time codes for the patient archive, staff SMS login and the
links. Codes live five minutes, so the old table is dropped, not copied.

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("links", sa.Column("share_scope", sa.String(length=16), nullable=True))
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
    op.create_table(
        "patient_accounts",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=False),
        sa.Column("id_card_hash", sa.String(length=64), nullable=True),
        sa.Column("identity_enc", sa.LargeBinary(), nullable=True),
        sa.Column("verified_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_patient_accounts")),
        sa.UniqueConstraint("phone_hash", name=op.f("uq_patient_accounts_phone_hash")),
    )
    op.create_index(op.f("ix_patient_accounts_id_card_hash"), "patient_accounts", ["id_card_hash"], unique=False)
    op.create_table(
        "patient_sessions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("account_pk", sa.Integer(), nullable=False),
        sa.Column("csrf_key", sa.String(length=64), nullable=False),
        sa.Column("persistent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["account_pk"], ["patient_accounts.pk"],
                                name=op.f("fk_patient_sessions_account_pk_patient_accounts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_patient_sessions")),
        sa.UniqueConstraint("sid_hash", name=op.f("uq_patient_sessions_sid_hash")),
    )
    op.create_index(op.f("ix_patient_sessions_account_pk"), "patient_sessions", ["account_pk"], unique=False)
    op.create_index(op.f("ix_patient_sessions_expires_at"), "patient_sessions", ["expires_at"], unique=False)
    op.create_table(
        "patient_members",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_pk", sa.Integer(), nullable=False),
        sa.Column("id_card_hash", sa.String(length=64), nullable=False),
        sa.Column("identity_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["account_pk"], ["patient_accounts.pk"],
                                name=op.f("fk_patient_members_account_pk_patient_accounts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_patient_members")),
        sa.UniqueConstraint("account_pk", "id_card_hash", name="uq_patient_members_account_id_card"),
    )
    op.create_index(op.f("ix_patient_members_id_card_hash"), "patient_members", ["id_card_hash"], unique=False)
    op.create_table(
        "member_scans",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_pk", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["account_pk"], ["patient_accounts.pk"],
                                name=op.f("fk_member_scans_account_pk_patient_accounts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_member_scans")),
    )
    op.create_index("ix_member_scans_account_at", "member_scans", ["account_pk", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("share_scope")
    for table in ("member_scans", "patient_members", "patient_sessions", "patient_accounts"):
        op.drop_table(table)
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
