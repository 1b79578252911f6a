"""The durable job queue's one table (storage/queue.py): the gateway's uploads and the cloud's callbacks."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from .base import metadata

jobs = Table(
    "jobs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("partition", String(128), nullable=True),  # e.g. the partner's appId
    Column("order_key", Text, nullable=True),  # same key: one at a time, oldest first
    Column("payload", Text, nullable=False),  # JSON
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("started_at", Float, nullable=False),  # start of the current retry cycle (enqueue or replay)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_jobs_due", "kind", "state", "next_attempt_at"),
    Index("ix_jobs_order", "order_key", "state", "pk"),
    Index("ix_jobs_partition", "partition", "state"),
)
