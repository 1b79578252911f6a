"""Per-partner request limits on /thirdparty/* (cloud/hospital_api/ratelimit.py): windows and overrides."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, Table

from .base import ID, metadata

rate_windows = Table(
    "partner_rate_windows",
    metadata,
    Column("app_id", ID, primary_key=True),
    Column("window_start", Float, primary_key=True),
    Column("used", Integer, nullable=False),
)

rate_limits = Table(
    "partner_rate_limits",
    metadata,
    Column("app_id", ID, primary_key=True),
    Column("per_window", Integer, nullable=False),  # 0: unlimited
    Column("updated_at", Float, nullable=False),
)
