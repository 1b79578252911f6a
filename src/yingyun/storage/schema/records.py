"""What the RIS sends: studies and reports with their versions, and the patient-facing links."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from .base import ID, TEXT, metadata

# Studies as the RIS describes them, one row per hospital + studyId.
studies = Table(
    "studies",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_id", String(128), nullable=False),
    Column("access_number", String(128), nullable=True),
    Column("study_uid", TEXT, nullable=True),
    Column("patient_id", TEXT, nullable=True),
    Column("patient_name", TEXT, nullable=True),
    Column("patient_sex", String(8), nullable=True),
    Column("modality", TEXT, nullable=True),
    Column("body_part", TEXT, nullable=True),
    Column("study_desc", TEXT, nullable=True),
    Column("study_date", String(19), nullable=True),
    Column("status", String(16), nullable=True),
    Column("his_num", TEXT, nullable=True),
    Column("id_card_hash", String(64), nullable=True, index=True),
    Column("phone_hash", String(64), nullable=True, index=True),
    Column("identity_enc", LargeBinary, nullable=True),
    Column("details", TEXT, nullable=False, default="{}"),  # JSON: every other typed field, identity excluded
    Column("raw_values", TEXT, nullable=False, default="{}"),  # JSON: raw text of malformed B/C values
    Column("warnings", TEXT, nullable=False, default="[]"),
    Column("version", Integer, nullable=False, default=1),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("deleted_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("hospital_id", "study_id", name="uq_studies_hospital_study"),
    Index("ix_studies_hospital_uid", "hospital_id", "study_uid"),
    Index("ix_studies_hospital_access", "hospital_id", "access_number"),
)

study_versions = Table(
    "study_versions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("study_pk", Integer, ForeignKey("studies.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("action", String(16), nullable=False),  # add | update | delete | restore
    Column("source", ID, nullable=True),  # partner appId (or gateway id) that sent it
    Column("raw_enc", LargeBinary, nullable=False),
    Column("warnings", TEXT, nullable=False, default="[]"),
    Column("received_at", Float, nullable=False),
)

# Reports join their study by hospital + studyId, so one that arrives first
# is linked the moment its study does.
reports = Table(
    "reports",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("report_number", String(128), nullable=False),
    Column("study_id", String(128), nullable=False),
    Column("access_number", String(128), nullable=True),
    Column("image_description", TEXT, nullable=True),
    Column("conclusion", TEXT, nullable=True),
    Column("report_time", String(19), nullable=True),
    Column("report_doctor", TEXT, nullable=True),
    Column("audit_time", String(19), nullable=True),
    Column("audit_doctor", TEXT, nullable=True),
    Column("print_time", String(19), nullable=True),
    Column("print_doctor", TEXT, nullable=True),
    Column("raw_values", TEXT, nullable=False, default="{}"),
    Column("warnings", TEXT, nullable=False, default="[]"),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("hospital_id", "report_number", name="uq_reports_hospital_number"),
    Index("ix_reports_hospital_study", "hospital_id", "study_id"),
)

report_versions = Table(
    "report_versions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("report_pk", Integer, ForeignKey("reports.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("source", ID, nullable=True),
    Column("raw_enc", LargeBinary, nullable=False),
    Column("warnings", TEXT, nullable=False, default="[]"),
    Column("received_at", Float, nullable=False),
)

# Patient-facing links: the QR code's, partners' and doctors' links, shares.
# Only the token's SHA-256 is searchable; the token itself is kept encrypted
# so that a reprinted exam card carries the same code.
links = Table(
    "links",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("token_enc", LargeBinary, nullable=True),
    Column("kind", String(16), nullable=False),  # qr | partner | doctor | share
    Column("hospital_id", ID, nullable=False),
    Column("study_id", String(128), nullable=False),
    # One live QR link per hospital + study: set while live, NULL once revoked.
    Column("slot", TEXT, nullable=True, unique=True),
    Column("parent_pk", Integer, nullable=True),
    Column("password_hash", TEXT, nullable=True),
    # A share of part of the study: "images" or "report" (NULL: both).
    Column("share_scope", String(16), nullable=True),
    Column("created_by", ID, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Index("ix_links_hospital_study", "hospital_id", "study_id"),
)

