"""Remote consultations (会诊, cloud/consultations/), doctors, and the patients' consultation pages."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from .base import ID, TEXT, metadata

# Doctors are accounts of one hospital: they request consultations and are invited as experts.
doctors = Table(
    "doctors",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", TEXT, nullable=False),
    Column("hospital_id", ID, nullable=False, index=True),
    Column("title", TEXT, nullable=True),
    Column("dept", TEXT, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# One consultation about one patient's studies. The patient is identified by
# the keyed hashes of their studies (never in clear); `hospital_id` is the
# requesting hospital, which decides who may manage it.
consultations = Table(
    "consultations",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("hospital_id", ID, nullable=False, index=True),
    Column("id_card_hash", String(64), nullable=True, index=True),
    Column("phone_hash", String(64), nullable=True, index=True),
    Column("patient_name", TEXT, nullable=True),
    Column("status", String(16), nullable=False),  # requested | scheduled | in_progress | concluded | cancelled
    Column("requesting_doctor_id", ID, nullable=True),
    Column("purpose", TEXT, nullable=True),
    Column("scheduled_at", String(19), nullable=True),  # hospital-local 'yyyy-MM-dd HH:mm:ss'
    Column("meeting_url", TEXT, nullable=True),
    Column("conclusion", TEXT, nullable=True),
    Column("concluded_by", ID, nullable=True),
    Column("concluded_at", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("cancelled_at", Float, nullable=True),
    Column("created_by", ID, nullable=True),  # partner appId, or "operator"
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

consultation_studies = Table(
    "consultation_studies",
    metadata,
    Column("consultation_pk", Integer, ForeignKey("consultations.pk", ondelete="CASCADE"), primary_key=True),
    Column("hospital_id", ID, primary_key=True),
    Column("study_id", String(128), primary_key=True),
    Index("ix_consultation_studies_study", "hospital_id", "study_id"),
)

consultation_experts = Table(
    "consultation_experts",
    metadata,
    Column("consultation_pk", Integer, ForeignKey("consultations.pk", ondelete="CASCADE"), primary_key=True),
    Column("doctor_id", ID, primary_key=True),
    Column("position", Integer, nullable=False, default=0),
)

# A patient's consultation page (contract §3.2 h5Url): a token for one patient
# (by keyed hashes), as one partner sees them (its grant at minting time).
consultation_links = Table(
    "consultation_links",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("app_id", ID, nullable=False),
    Column("id_card_hash", String(64), nullable=True),
    Column("phone_hash", String(64), nullable=True),
    Column("patient_name", TEXT, nullable=True),
    Column("hospitals", Text, nullable=False),  # JSON list: the partner's grant when minted
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)
