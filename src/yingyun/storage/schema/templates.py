"""Report templates and the knowledge base of report phrases (cloud/templates/).

Body parts and exam items belong to a reading centre (`scope_kind`
"hospital", its id) or to a whole union (`scope_kind` "union"); a name is
unique within its owner and modality (30012, 30014), so `modality` is ''
when none is given (a NULL would never collide). An exam item carries the
text a new report of its exam starts from.

Knowledge-base folders belong to one user (`owner` "user:<username>", the
personal ones) or to a reading centre (`owner` "hospital:<id>", `shared`);
children take their parent's owner. Deletion is soft (`deleted_at`): a
deleted row keeps its name in `name` and drops `live_name` (`live_title`)
to NULL, so the unique constraints over the live names hold for live rows
only (60002, 60003) on both dialects, and a deleted name can be used again.
`parent_key` is the parent's id, 0 at the root (a NULL would never collide).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, UniqueConstraint, false

from .base import ID, TEXT, metadata
from .dicom import dicom_studies

body_parts = Table(
    "body_parts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope_kind", String(16), nullable=False),  # hospital | union
    Column("scope_id", ID, nullable=False),
    Column("name", TEXT, nullable=False),
    Column("modality", String(16), nullable=False, default="", server_default=""),
    Column("created_by", ID, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope_kind", "scope_id", "name", "modality"),
)

exam_items = Table(
    "exam_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope_kind", String(16), nullable=False),
    Column("scope_id", ID, nullable=False),
    Column("name", TEXT, nullable=False),
    Column("body_part_id", Integer, nullable=False, index=True),
    Column("modality", String(16), nullable=False),
    Column("template_description", TEXT, nullable=False, default="", server_default=""),
    Column("template_conclusion", TEXT, nullable=False, default="", server_default=""),
    Column("created_by", ID, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope_kind", "scope_id", "name", "modality"),
)

kb_folders = Table(
    "kb_folders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(80), nullable=False, index=True),  # user:<username> | hospital:<id>
    Column("shared", Boolean, nullable=False, default=False, server_default=false()),
    Column("parent_key", Integer, nullable=False, default=0, server_default="0"),
    Column("depth", Integer, nullable=False),  # 1 at the root, at most 3 (60006)
    Column("name", TEXT, nullable=False),
    Column("live_name", TEXT, nullable=True),
    Column("created_by", ID, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),
    Column("deleted_by", ID, nullable=True),
    UniqueConstraint("owner", "parent_key", "live_name"),
)

kb_texts = Table(
    "kb_texts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("folder_id", Integer, nullable=False),
    Column("title", TEXT, nullable=False),
    Column("live_title", TEXT, nullable=True),
    Column("body", TEXT, nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),
    Column("deleted_by", ID, nullable=True),
    UniqueConstraint("folder_id", "live_title"),
)

# The reading turnaround (cloud/stats/turnaround.py) joins 30 days of reports to their studies' stable time:
# with stable_at in the index, the study's row is not read (a third of the request's time over 50,000 studies).
Index("ix_dicom_studies_stable_at", dicom_studies.c.hospital_id, dicom_studies.c.study_uid, dicom_studies.c.stable_at)
