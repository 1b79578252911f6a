"""cloud film: link attempt locks, sessions, SMS codes, access audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_guards",
        sa.Column("link_pk", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lock_level", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["link_pk"], ["links.pk"], name=op.f("fk_link_guards_link_pk_links"),
            ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("link_pk", name=op.f("pk_link_guards")),
    )
    op.create_table(
        "link_sessions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("link_pk", sa.Integer(), nullable=False),
        sa.Column("csrf_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["link_pk"], ["links.pk"], name=op.f("fk_link_sessions_link_pk_links"),
            ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_link_sessions")),
        sa.UniqueConstraint("sid_hash", name=op.f("uq_link_sessions_sid_hash")),
    )
    op.create_index(op.f("ix_link_sessions_link_pk"), "link_sessions", ["link_pk"], unique=False)
    op.create_index(op.f("ix_link_sessions_expires_at"), "link_sessions", ["expires_at"], unique=False)
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
    op.create_table(
        "access_audit",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("link_pk", sa.Integer(), nullable=True),
        sa.Column("link_kind", sa.String(length=16), nullable=True),
        sa.Column("hospital_id", sa.String(length=64), nullable=True),
        sa.Column("study_id", sa.String(length=128), nullable=True),
        sa.Column("study_uid", sa.Text(), nullable=True),
        sa.Column("access", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_access_audit")),
    )
    op.create_index(op.f("ix_access_audit_at"), "access_audit", ["at"], unique=False)
    op.create_index(op.f("ix_access_audit_link_pk"), "access_audit", ["link_pk"], unique=False)
    op.create_index("ix_access_audit_study_uid", "access_audit", ["study_uid", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("access_audit")
    op.drop_index("ix_verify_codes_link_created", table_name="verify_codes")
    op.drop_table("verify_codes")
    op.drop_table("link_sessions")
    op.drop_table("link_guards")
