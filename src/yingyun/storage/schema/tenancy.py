"""Unions, hospitals, partners with their tokens and grants, and the PACS they register (tenancy.py)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Integer, LargeBinary, String, Table, true

from .base import ID, TEXT, metadata

unions = Table(
    "unions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", TEXT, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

hospitals = Table(
    "hospitals",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", TEXT, nullable=False),
    Column("union_id", ID, nullable=True, index=True),
    # A disabled hospital takes no data (RIS, C-STORE, STOW) and its patient pages say so; nothing is deleted.
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

partners = Table(
    "partners",
    metadata,
    Column("app_id", ID, primary_key=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("callback_url", TEXT, nullable=True),
    Column("mini_app_id", TEXT, nullable=True),
    Column("mini_path", TEXT, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A partner's tokens, encrypted: the token is both the HMAC key of its
# signatures and the AES key of its identity fields, so it must be
# recoverable. Several are live while a rotation's grace period runs.
partner_tokens = Table(
    "partner_tokens",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("app_id", ID, ForeignKey("partners.app_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_enc", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
)

partner_grants = Table(
    "partner_grants",
    metadata,
    Column("app_id", ID, ForeignKey("partners.app_id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # "hospital" | "union"
    Column("target_id", ID, primary_key=True),
)

pacs = Table(
    "pacs",
    metadata,
    Column("ae_title", String(16), primary_key=True),
    Column("host", TEXT, nullable=False),
    Column("port", Integer, nullable=False),
    Column("hospital_id", ID, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

