"""Storage commitment (gateway/commitment.py): the requests a PACS made, until their result is answered."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, UniqueConstraint

from .base import ID, TEXT, UID, metadata

# One row per Request Storage Commitment (N-ACTION), written before it is acknowledged, so a
# restart does not lose one. `state`: pending (the N-EVENT-REPORT not yet answered by the
# requester), reported (answered: the counts are those of the result sent), undeliverable (no
# attempt got through). The result is worked out when it is sent, from what is durably held then.
storage_commitments = Table(
    "storage_commitments",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("requester_ae", String(16), nullable=False),
    Column("transaction_uid", UID, nullable=False),
    Column("refs", TEXT, nullable=False),  # JSON [[SOP Class UID, SOP Instance UID], ...]
    Column("n_requested", Integer, nullable=False),
    Column("n_committed", Integer, nullable=True),
    Column("n_failed", Integer, nullable=True),
    Column("state", String(16), nullable=False),
    Column("via", String(16), nullable=True),  # association | new-association
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("reported_at", Float, nullable=True),
    UniqueConstraint("hospital_id", "requester_ae", "transaction_uid", name="uq_storage_commitments_transaction"),
    Index("ix_storage_commitments_due", "state", "next_attempt_at"),
)
