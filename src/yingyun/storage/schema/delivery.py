"""A final report's way back to the hospital (archive/downlink.py): what waits for a hospital's gateway, and
where each hospital's RIS takes its reports."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table

from .base import ID, TEXT, UID, metadata

# On the cloud: final reports waiting for their hospital's gateway, which asks for them (POST /sync/v1/down) and
# acknowledges each by its event id once it holds it durably; an acknowledged row is kept (when it went down).
# The report itself is read from report_versions when it is offered: nothing of the patient is copied here.
report_downlink = Table(
    "report_downlink",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_uid", UID, nullable=False),
    Column("version_pk", Integer, nullable=False),  # report_versions.pk: the version that became final
    Column("created_at", Float, nullable=False),
    Column("offered_at", Float, nullable=True),  # last offered to the gateway
    Column("offers", Integer, nullable=False, default=0),
    Column("acked_at", Float, nullable=True),
    Index("ix_report_downlink_waiting", "hospital_id", "acked_at", "pk"),
)

# Per hospital: the RIS URL its final reports are POSTed to (over --ris-report-url, which is for every hospital).
ris_endpoints = Table(
    "ris_endpoints",
    metadata,
    Column("hospital_id", ID, primary_key=True),
    Column("report_url", TEXT, nullable=False),
    Column("updated_at", Float, nullable=False),
)
