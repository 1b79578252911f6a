"""How long studies are kept: retention rules, legal holds, and the tombstones of what was purged."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table

from .base import ID, TEXT, UID, metadata

# Years a hospital keeps a study, by the patient class its RIS record names
# (inpatientNum: inpatient; clinicNum: outpatient; healthScreenNum or none: other).
retention_rules = Table(
    "retention_rules",
    metadata,
    Column("hospital_id", ID, primary_key=True),
    Column("outpatient_years", Integer, nullable=False),
    Column("inpatient_years", Integer, nullable=False),
    Column("other_years", Integer, nullable=True),  # NULL: studies of no class are kept
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A study under a legal hold is never purged, whatever its age or deletion.
legal_holds = Table(
    "legal_holds",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("study_uid", UID, nullable=False, unique=True),
    Column("reason", TEXT, nullable=False),
    Column("created_at", Float, nullable=False),
    # The gateway a hold came from over the sync link (NULL: made here): that gateway lifts only its own.
    Column("origin", ID, nullable=True),
)

# What a purge removed, kept for the audit: no patient data, only what identifies the study.
purge_tombstones = Table(
    "purge_tombstones",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_id", String(128), nullable=True),
    Column("study_uid", UID, nullable=True),
    Column("deleted_at", Float, nullable=True),
    Column("purged_at", Float, nullable=False),
    Column("reason", String(16), nullable=False),  # deleted | retention
    Column("rule", TEXT, nullable=False),  # by what: "purge-deleted-days=30", "inpatient-years=30"
    Column("instances", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Index("ix_purge_tombstones_hospital_uid", "hospital_id", "study_uid"),
)
