"""HL7 v2 over MLLP (gateway/hl7/): the senders allowed to send, every message received, patient merges."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from .base import ID, TEXT, metadata

# Interface engines allowed to send, as PACS are (`yingyun admin hl7-sender add`):
# the sending facility (MSH-4) from this host files its orders under this hospital.
hl7_senders = Table(
    "hl7_senders",
    metadata,
    Column("facility", String(180), primary_key=True),
    Column("host", TEXT, nullable=False),
    Column("hospital_id", ID, nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Every message a registered sender sent, accepted or not: its raw bytes
# (encrypted: they carry the patient's identity), what was answered and why.
# (facility, control_id) is MSH-10 per sender: a message already accepted
# (AA) and sent again is answered AA without a second write; one refused (AE)
# may be sent again under its control id and is then processed again.
hl7_messages = Table(
    "hl7_messages",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("facility", String(180), nullable=False),
    Column("control_id", String(199), nullable=False),
    Column("hospital_id", ID, nullable=False),
    Column("message_type", String(32), nullable=False),
    Column("ack_code", String(2), nullable=False),  # AA | AE | AR
    Column("error", TEXT, nullable=True),  # where and why, never a value the hospital sent
    Column("raw_enc", LargeBinary, nullable=False),
    Column("received_at", Float, nullable=False),
    UniqueConstraint("facility", "control_id"),
)
Index("ix_hl7_messages_received", hl7_messages.c.received_at)

# ADT^A40: the studies of a patient id moved to the surviving one (the audit of a merge).
hl7_merges = Table(
    "hl7_merges",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False, index=True),
    Column("message_pk", Integer, nullable=False),
    Column("facility", String(180), nullable=False),
    Column("control_id", String(199), nullable=False),
    Column("from_patient_id", TEXT, nullable=False),
    Column("to_patient_id", TEXT, nullable=False),
    Column("study_ids", TEXT, nullable=False),  # JSON list of the studyIds moved
    Column("merged_at", Float, nullable=False),
)
