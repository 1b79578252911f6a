"""What a hospital prints on its reports and shows on its error pages (yingyun/letterheads.py)."""

from __future__ import annotations

from sqlalchemy import Column, Float, LargeBinary, String, Table

from .base import ID, metadata

hospital_letterheads = Table(
    "hospital_letterheads",
    metadata,
    Column("hospital_id", ID, primary_key=True),
    Column("contact_phone", String(32), nullable=True),  # the hospital's own desk: not patient data
    Column("logo", LargeBinary, nullable=True),  # PNG or JPEG, at most core.reportpdf.LOGO_MAX_BYTES
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
