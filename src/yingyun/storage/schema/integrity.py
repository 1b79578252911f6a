"""Whether what is stored is still what was received: blob digests, the scrub's progress, backups run."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table

from .base import TEXT, metadata

# The SHA-256 of each blob, recorded at ingest (or, for one stored before that, the first time the
# scrub or `admin verify` reads it), and what the last reading found.
blob_digests = Table(
    "blob_digests",
    metadata,
    Column("blob_key", TEXT, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("checked_at", Float, nullable=False),
    Column("state", String(16), nullable=False),  # ok | missing | corrupt | repaired
    # The damaged ones, oldest finding first: asked of the gateways every outbox report (archive/scrub.py).
    Index("ix_blob_digests_state", "state", "checked_at"),
)

# One row: where the background scrub is in its pass, and what it found (read by /metrics).
scrub_state = Table(
    "scrub_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pass_started_at", Float, nullable=True),
    Column("last_pk", Integer, nullable=False, default=0),  # instances.pk reached in this pass
    Column("checked", Integer, nullable=False, default=0),  # objects read in this pass
    Column("checked_bytes", BigInteger, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),  # missing + corrupt found, all passes
    Column("passes", Integer, nullable=False, default=0),  # completed
    Column("last_pass_at", Float, nullable=True),
)

# Every `yingyun backup` run (read by /metrics: backups' last success).
backup_runs = Table(
    "backup_runs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("folder", TEXT, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Column("ok", Integer, nullable=False),  # 1 | 0
    Column("files", Integer, nullable=False),
    Column("bytes_copied", BigInteger, nullable=False),
    Column("error", TEXT, nullable=True),
)
