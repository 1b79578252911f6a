"""One-time SMS codes by phone and purpose, and the per-phone attempt lock (yingyun.phonecodes)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table

from .base import metadata

# Codes sent, kept as keyed hashes of (purpose, phone, code); also the daily
# send count. `purpose` separates what a code opens ("archive", "staff",
# "link:<pk>" for a QR link's own code), `phone_hash` is Vault.phone_hash.
phone_codes = Table(
    "phone_codes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("purpose", String(64), nullable=False),
    Column("phone_hash", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Index("ix_phone_codes_subject_created", "purpose", "phone_hash", "created_at"),
)

# The attempt lock of one phone for one purpose (contract code 20004), shared
# by every browser and process: `failures` wrong codes since the last lock or
# success; reaching the limit locks until `locked_until`.
phone_guards = Table(
    "phone_guards",
    metadata,
    Column("purpose", String(64), primary_key=True),
    Column("phone_hash", String(64), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("locked_until", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)
