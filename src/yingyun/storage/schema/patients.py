"""The patient's own archive (/h5/me): accounts by phone, their sessions, family members, QR binds."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from .base import metadata

# One account per phone number (`phone_hash` = Vault.phone_hash). Real-name
# verification sets `id_card_hash` (Vault.id_card_hash, matched against
# studies.id_card_hash) and keeps name + ID number encrypted in `identity_enc`.
patient_accounts = Table(
    "patient_accounts",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("phone_hash", String(64), nullable=False, unique=True),
    Column("phone_enc", LargeBinary, nullable=False),
    Column("id_card_hash", String(64), nullable=True, index=True),
    Column("identity_enc", LargeBinary, nullable=True),
    Column("verified_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

# Signed-in browsers: only the SHA-256 of the cookie value is stored.
# `persistent`: "stay signed in" was asked for (30 days), else the browser's session.
patient_sessions = Table(
    "patient_sessions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("sid_hash", String(64), nullable=False, unique=True),
    Column("account_pk", Integer, ForeignKey("patient_accounts.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_key", String(64), nullable=False),
    Column("persistent", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("revoked_at", Float, nullable=True),
)

# Family members of an account: their studies are the account's to see.
# Name, ID number and relationship are encrypted; `id_card_hash` matches studies.
patient_members = Table(
    "patient_members",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("account_pk", Integer, ForeignKey("patient_accounts.pk", ondelete="CASCADE"), nullable=False),
    Column("id_card_hash", String(64), nullable=False, index=True),
    Column("identity_enc", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("account_pk", "id_card_hash", name="uq_patient_members_account_id_card"),
)

# Members bound by scanning an exam card's QR code: counted per day (50004).
member_scans = Table(
    "member_scans",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("account_pk", Integer, ForeignKey("patient_accounts.pk", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_member_scans_account_at", "account_pk", "at"),
)
