"""The DICOM index: studies, series and instances as they arrived, their blobs, and reconciliation."""

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
    String,
    Table,
    UniqueConstraint,
)

from .base import ID, TEXT, UID, metadata

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

