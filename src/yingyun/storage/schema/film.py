"""The patient pages (cloud film): link attempt locks, sessions and the access audit (codes: `phonecodes`)."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table

from .base import ID, TEXT, metadata

# The attempt lock of a link (contract code 20004), shared by every browser
# and process: `failures` wrong answers since the last lock or success;
# reaching the limit locks the link until `locked_until` and bumps
# `lock_level`, which doubles the next lock; a success resets both.
link_guards = Table(
    "link_guards",
    metadata,
    Column("link_pk", Integer, ForeignKey("links.pk", ondelete="CASCADE"), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("lock_level", Integer, nullable=False, default=0),
    Column("locked_until", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

# Verified visitors. Only the SHA-256 of the cookie value is stored; the
# session belongs to one link (and so one study), and `csrf_key` signs the
# per-form tokens of that session's pages.
link_sessions = Table(
    "link_sessions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("sid_hash", String(64), nullable=False, unique=True),
    Column("link_pk", Integer, ForeignKey("links.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_key", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("revoked_at", Float, nullable=True),
)

# Every page view, image request, download and verification outcome on a
# patient/doctor/share link. No names, phone or ID numbers, no tokens.
access_audit = Table(
    "access_audit",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("link_pk", Integer, nullable=True, index=True),
    Column("link_kind", String(16), nullable=True),
    Column("hospital_id", ID, nullable=True),
    Column("study_id", String(128), nullable=True),
    Column("study_uid", TEXT, nullable=True),
    Column("access", String(32), nullable=False),
    Column("detail", TEXT, nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", TEXT, nullable=True),
    Index("ix_access_audit_study_uid", "study_uid", "at"),
)

