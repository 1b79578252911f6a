"""The index schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are Unix seconds (float) in UTC; hospital-local date-times from the
RIS are kept as the normalised text they arrived as ('yyyy-MM-dd HH:mm:ss').
Identity fields never appear in clear: `identity_enc` holds them encrypted
(core.crypto.Vault) and `*_hash` the keyed hashes used for lookups. Raw
payloads are kept encrypted too, since they carry the same identity fields.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = String(64)
UID = String(64)
TEXT = Text

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
    Column("created_by", ID, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Index("ix_links_hospital_study", "hospital_id", "study_id"),
)

# What DICOM says a study is, one row per hospital + Study Instance UID,
# with the counts of what actually arrived (contract §2.7).
dicom_studies = Table(
    "dicom_studies",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_uid", UID, nullable=False),
    Column("ris_study_pk", Integer, ForeignKey("studies.pk", ondelete="SET NULL"), nullable=True, index=True),
    Column("patient_id", TEXT, nullable=True),
    Column("patient_name", TEXT, nullable=True),
    Column("patient_name_raw", TEXT, nullable=True),
    Column("patient_birth_date", String(8), nullable=True),
    Column("patient_sex", String(16), nullable=True),
    Column("study_date", String(8), nullable=True),
    Column("study_time", String(16), nullable=True),
    Column("study_description", TEXT, nullable=True),
    Column("accession_number", String(64), nullable=True),
    Column("referring_physician", TEXT, nullable=True),
    Column("modalities", TEXT, nullable=False, default=""),
    Column("n_series", Integer, nullable=False, default=0),
    Column("n_images", Integer, nullable=False, default=0),
    Column("n_sr", Integer, nullable=False, default=0),
    Column("n_pdf", Integer, nullable=False, default=0),
    Column("n_documents", Integer, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("first_instance_at", Float, nullable=False),
    Column("last_instance_at", Float, nullable=False),
    Column("stable", Boolean, nullable=False, default=False),
    Column("stable_at", Float, nullable=True),
    Column("stable_generation", Integer, nullable=False, default=0),
    UniqueConstraint("hospital_id", "study_uid", name="uq_dicom_studies_hospital_uid"),
    Index("ix_dicom_studies_hospital_access", "hospital_id", "accession_number"),
    Index("ix_dicom_studies_unstable", "stable", "last_instance_at"),
)

series = Table(
    "series",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_uid", UID, nullable=False),
    Column("series_uid", UID, nullable=False),
    Column("modality", String(16), nullable=True),
    Column("series_number", Integer, nullable=True),
    Column("description", TEXT, nullable=True),
    Column("body_part", TEXT, nullable=True),
    Column("series_date", String(8), nullable=True),
    Column("series_time", String(16), nullable=True),
    Column("n_instances", Integer, nullable=False, default=0),
    UniqueConstraint("hospital_id", "series_uid", name="uq_series_hospital_uid"),
    Index("ix_series_hospital_study", "hospital_id", "study_uid"),
)

instances = Table(
    "instances",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_uid", UID, nullable=False),
    Column("series_uid", UID, nullable=False),
    Column("sop_uid", UID, nullable=False),
    Column("sop_class_uid", UID, nullable=False),
    Column("transfer_syntax", UID, nullable=False),
    Column("kind", String(16), nullable=False),  # image | sr | pdf | document
    Column("blob_key", TEXT, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("instance_number", Integer, nullable=True),
    Column("number_of_frames", Integer, nullable=False, default=1),
    Column("rows", Integer, nullable=True),
    Column("columns", Integer, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("source_ae", String(16), nullable=True),
    Column("received_at", Float, nullable=False),
    UniqueConstraint("hospital_id", "sop_uid", name="uq_instances_hospital_sop"),
    Index("ix_instances_hospital_series", "hospital_id", "series_uid", "instance_number"),
    Index("ix_instances_hospital_study", "hospital_id", "study_uid"),
)

# Copies replaced by a changed re-send, kept until purge.
superseded_instances = Table(
    "superseded_instances",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("sop_uid", UID, nullable=False, index=True),
    Column("blob_key", TEXT, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("superseded_at", Float, nullable=False),
)

# Bytes of small blobs whose files are not durable yet (storage/blobjournal.py):
# a row is deleted once its file is.
blob_journal = Table(
    "blob_journal",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("blob_key", TEXT, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("written_at", Float, nullable=False),
)

reconcile_logs = Table(
    "reconcile_logs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("kind", String(8), nullable=False),  # study | range
    Column("start_time", String(19), nullable=True),
    Column("end_time", String(19), nullable=True),
    Column("source", ID, nullable=True),
    Column("raw_enc", LargeBinary, nullable=False),
    Column("received_at", Float, nullable=False, index=True),
)

reconcile_entries = Table(
    "reconcile_entries",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("log_pk", Integer, ForeignKey("reconcile_logs.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_id", String(128), nullable=False),
    Column("access_number", String(128), nullable=True),
    Column("study_uid", TEXT, nullable=True),
    Column("study_date", String(19), nullable=True),
    Column("expected_series", Integer, nullable=False),
    Column("expected_images", Integer, nullable=False),
    Column("expected_reports", Integer, nullable=False),
    Column("expected_pdf", Integer, nullable=False),
    Column("logged_at", Float, nullable=False),
    Index("ix_reconcile_entries_hospital_study", "hospital_id", "study_id"),
)

# -- cloud film (patient pages) --

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

# SMS verification codes, kept as keyed hashes; also the daily send count.
verify_codes = Table(
    "verify_codes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("link_pk", Integer, ForeignKey("links.pk", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Index("ix_verify_codes_link_created", "link_pk", "created_at"),
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

# -- split deployment (gateway -> cloud sync) --

# Gateways registered on the cloud; the key is kept encrypted because it
# verifies the gateway's HMAC signatures.
gateways = Table(
    "gateways",
    metadata,
    Column("id", ID, primary_key=True),
    Column("hospital_id", ID, nullable=False),
    Column("key_enc", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Event ids the cloud has applied: a re-delivery is answered "duplicate".
sync_applied = Table(
    "sync_applied",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("gateway_id", ID, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("applied_at", Float, nullable=False),
)

# -- what every process of one deployment must agree on (storage/deployment.py) --

# name -> value: the keyed fingerprint of the identity-data keys the data is
# written with, and where the blobs are (so `yingyun import` stores where the
# server reads).
deployment = Table(
    "deployment",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", TEXT, nullable=False),
    Column("recorded_at", Float, nullable=False),
)
