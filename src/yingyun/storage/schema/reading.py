"""Remote reading (cloud/reading/): routes to reading centres, the reports being read, their kept steps, and the
critical findings operators see.

`reading_reports` holds one row per study being read (made when someone first locks it): its draft, its state
(`drafting`, `submitted`, `returned`, `final`, `amending`), its optimistic `version`, and its lock. The lock is
live while `locked_by` is set and neither `locked_at` nor `lock_saved_at` is older than 30 minutes. The four
turnaround columns (`first_submitted_at`, `first_final_at`, `returned_count`, `amended_count`) are read by the
statistics, with `dicom_studies.stable_at` as the start. A final report is also written into `reports` (through
`archive.accept`), where the patient pages, the partner API and reconciliation read it; `reading_revisions` keeps
each submitted, returned and final step, so a final report stays shown while its amendment is drafted.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, UniqueConstraint, false

from .base import ID, TEXT, UID, metadata
from .dicom import dicom_studies

reading_routes = Table(
    "reading_routes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("from_hospital_id", ID, nullable=False, index=True),
    Column("to_hospital_id", ID, nullable=False, index=True),
    Column("modality", String(16), nullable=True),  # None: every modality not routed on its own
    Column("created_at", Float, nullable=False),
    Column("created_by", ID, nullable=False),
)

reading_reports = Table(
    "reading_reports",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("study_uid", UID, nullable=False),
    Column("hospital_id", ID, nullable=False),
    Column("centre_id", ID, nullable=False),
    Column("report_number", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False, default=0, server_default="0"),
    Column("image_description", TEXT, nullable=True),
    Column("conclusion", TEXT, nullable=True),
    Column("critical", Boolean, nullable=False, default=False, server_default=false()),
    Column("report_doctor_id", ID, nullable=True),
    Column("report_doctor", TEXT, nullable=True),  # the display name, as the report shows it
    Column("report_time", Float, nullable=True),
    Column("audit_doctor_id", ID, nullable=True),
    Column("audit_doctor", TEXT, nullable=True),
    Column("audit_time", Float, nullable=True),
    Column("return_comment", TEXT, nullable=True),
    Column("locked_by", ID, nullable=True),
    Column("locked_name", TEXT, nullable=True),
    Column("locked_at", Float, nullable=True),
    Column("lock_saved_at", Float, nullable=True),
    Column("first_submitted_at", Float, nullable=True),
    Column("first_final_at", Float, nullable=True),
    Column("returned_count", Integer, nullable=False, default=0, server_default="0"),
    Column("amended_count", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("hospital_id", "study_uid", name="uq_reading_reports_hospital_study"),
    UniqueConstraint("hospital_id", "report_number", name="uq_reading_reports_hospital_number"),
    Index("ix_reading_reports_centre_state", "centre_id", "state"),
)

reading_revisions = Table(
    "reading_revisions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("reading_pk", Integer, ForeignKey("reading_reports.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # submitted | returned | final | amend
    Column("image_description", TEXT, nullable=True),
    Column("conclusion", TEXT, nullable=True),
    Column("critical", Boolean, nullable=False, default=False, server_default=false()),
    Column("actor", ID, nullable=False),
    Column("actor_name", TEXT, nullable=True),
    Column("comment", TEXT, nullable=True),
    Column("at", Float, nullable=False),
)

reading_critical = Table(
    "reading_critical",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("reading_pk", Integer, ForeignKey("reading_reports.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("hospital_id", ID, nullable=False, index=True),
    Column("centre_id", ID, nullable=False, index=True),
    Column("study_uid", UID, nullable=False),
    Column("reported_by", ID, nullable=False),
    Column("at", Float, nullable=False, index=True),
)

# The worklist reads a centre's hospitals' stable studies in waiting order.
Index("ix_dicom_studies_reading", dicom_studies.c.hospital_id, dicom_studies.c.stable, dicom_studies.c.stable_at)
