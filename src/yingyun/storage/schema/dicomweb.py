"""DICOMweb's own tables (cloud/dicomweb/) and the extra indexes QIDO needs.

Operator bearer tokens: only the SHA-256 of the token is stored (the token
is shown once, by `yingyun admin token add`). A token grants either every
hospital (`all_hospitals`) or the hospitals listed in `dicomweb_token_grants`.
Revoked tokens are kept (with `revoked_at`) for the audit trail; a name is
unique among live tokens only, so a revoked name can be issued again.

The indexes on `dicom_studies` serve QIDO-RS study searches (by patient,
by date, by Study Instance UID across hospitals for all-hospital callers).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text, text

from .base import ID, metadata
from .dicom import dicom_studies

dicomweb_tokens = Table(
    "dicomweb_tokens",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("all_hospitals", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("note", Text, nullable=True),
    Index("uq_dicomweb_tokens_live_name", "name", unique=True,
          sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
)

dicomweb_token_grants = Table(
    "dicomweb_token_grants",
    metadata,
    Column("token_pk", Integer, ForeignKey("dicomweb_tokens.pk", ondelete="CASCADE"), primary_key=True),
    Column("hospital_id", ID, primary_key=True),
)

# QIDO-RS indexes on the shared study index (created by migration 0003).
_d = dicom_studies
ix_patient = Index("ix_dicom_studies_hospital_patient", _d.c.hospital_id, _d.c.patient_id)
ix_date = Index("ix_dicom_studies_hospital_date", _d.c.hospital_id, _d.c.study_date)
ix_study_uid = Index("ix_dicom_studies_study_uid", _d.c.study_uid)

# QIDO-RS PatientName prefixes (`Wang*`, `王*`), on PostgreSQL only (created by
# migration 0003): the folded name and its ideographic and phonetic groups, as
# qido._folded/_group spell them.
_folded = "replace(replace(lower(coalesce(patient_name_raw, '')), '^', ''), ' ', '')"
name_indexes = [
    Index(f"ix_dicom_studies_name_g{n}", _d.c.hospital_id, text(expr),
          postgresql_ops={expr: "text_pattern_ops"}).ddl_if(dialect="postgresql")
    for n, expr in ((1, _folded), (2, f"split_part({_folded}, '=', 2)"), (3, f"split_part({_folded}, '=', 3)"))
]
