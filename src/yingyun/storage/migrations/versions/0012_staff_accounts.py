"""staff accounts: users, user_roles, staff_sessions, staff_audit; every doctor becomes a user

A doctor's profile (the `doctors` row) belongs to the user of the same name:
each existing doctor gets a user with no password (it cannot sign in until
`admin user reset-password`) and the read-only `clinician` role at its
hospital.

Revision ID: 0012
Revises: 0011 (the patient archive's phone codes, merged from branch archive)
"""
import time

from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("totp_enc", sa.LargeBinary(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failures_since", sa.Float(), nullable=True),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_users")),
        sa.UniqueConstraint("phone_hash", name=op.f("uq_users_phone_hash")),
    )
    op.create_table(
        "user_roles",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["users.username"], name=op.f("fk_user_roles_username_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("username", "role", "scope_kind", "scope_id", name=op.f("pk_user_roles")),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["username"], ["users.username"], name=op.f("fk_staff_sessions_username_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sid_hash", name=op.f("pk_staff_sessions")),
    )
    op.create_index(op.f("ix_staff_sessions_username"), "staff_sessions", ["username"])
    op.create_table(
        "staff_audit",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("hospital_id", sa.String(length=64), nullable=True),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_staff_audit")),
    )
    op.create_index(op.f("ix_staff_audit_at"), "staff_audit", ["at"])
    op.create_index(op.f("ix_staff_audit_username"), "staff_audit", ["username"])
    op.create_index(op.f("ix_staff_audit_hospital_id"), "staff_audit", ["hospital_id"])

    # Every doctor becomes a user (module docstring).
    doctors = sa.table("doctors", sa.column("id", sa.String), sa.column("name", sa.Text),
                       sa.column("hospital_id", sa.String))
    users = sa.table("users", sa.column("username", sa.String), sa.column("name", sa.Text),
                     sa.column("enabled", sa.Boolean), sa.column("failures", sa.Integer),
                     sa.column("created_at", sa.Float), sa.column("updated_at", sa.Float))
    roles = sa.table("user_roles", sa.column("username", sa.String), sa.column("role", sa.String),
                     sa.column("scope_kind", sa.String), sa.column("scope_id", sa.String))
    bind = op.get_bind()
    now = time.time()
    rows = bind.execute(sa.select(doctors.c.id, doctors.c.name, doctors.c.hospital_id)).all()
    if rows:
        bind.execute(sa.insert(users), [{"username": r.id, "name": r.name, "enabled": True, "failures": 0,
                                         "created_at": now, "updated_at": now} for r in rows])
        bind.execute(sa.insert(roles), [{"username": r.id, "role": "clinician", "scope_kind": "hospital",
                                         "scope_id": r.hospital_id} for r in rows])


def downgrade() -> None:
    op.drop_table("staff_audit")
    op.drop_table("staff_sessions")
    op.drop_table("user_roles")
    op.drop_table("users")
