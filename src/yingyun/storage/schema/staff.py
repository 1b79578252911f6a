"""Staff accounts (cloud/staff): users, their scoped roles, their sign-in sessions and what they did.

A user's phone is encrypted (`phone_enc`) and found by its keyed hash
(`phone_hash`), like a patient's; the password is kept only as its Argon2id
hash and the TOTP secret encrypted. The failed sign-ins are counted on the
user's row, so the lockout holds for every client and every process. A
session row keeps its end (`ended_at`, `end_reason`) so that a session ended
by a newer sign-in can be told apart from an unknown one (20007 vs 20005).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Integer, LargeBinary, String, Table, true

from .base import ID, TEXT, UID, metadata

users = Table(
    "users",
    metadata,
    Column("username", ID, primary_key=True),
    Column("name", TEXT, nullable=False),
    Column("phone_enc", LargeBinary, nullable=True),
    Column("phone_hash", String(64), nullable=True, unique=True),
    Column("password_hash", TEXT, nullable=True),  # None: cannot sign in with a password until one is set
    Column("totp_enc", LargeBinary, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    Column("failures_since", Float, nullable=True),
    Column("locked_until", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# One row per role a user holds; `scope_kind` is "platform" (scope_id ""), "union" or "hospital".
user_roles = Table(
    "user_roles",
    metadata,
    Column("username", ID, ForeignKey("users.username", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("scope_kind", String(16), primary_key=True),
    Column("scope_id", ID, primary_key=True),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("sid_hash", String(64), primary_key=True),  # the cookie's keyed hash: the cookie itself is never kept
    Column("username", ID, ForeignKey("users.username", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("end_reason", String(16), nullable=True),  # signed-out | replaced | disabled
)

staff_audit = Table(
    "staff_audit",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("username", ID, nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("subject_kind", String(32), nullable=False),
    Column("subject_id", TEXT, nullable=True),
    Column("hospital_id", ID, nullable=True, index=True),
    Column("study_uid", UID, nullable=True),
    Column("detail", TEXT, nullable=True),  # JSON; never names, phone or ID numbers
)
