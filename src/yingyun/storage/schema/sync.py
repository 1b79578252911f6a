"""The split deployment (gateway -> cloud sync), and what every process of one deployment agrees on."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, LargeBinary, String, Table

from .base import ID, TEXT, metadata

# Gateways registered on the cloud; the key is kept encrypted because it
# verifies the gateway's HMAC signatures.
gateways = Table(
    "gateways",
    metadata,
    Column("id", ID, primary_key=True),
    Column("hospital_id", ID, nullable=False),
    Column("key_enc", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Event ids the cloud has applied: a re-delivery is answered "duplicate".
sync_applied = Table(
    "sync_applied",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("gateway_id", ID, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("applied_at", Float, nullable=False),
)

# Each gateway's last report of its outbox (PATH_OUTBOX), and the pending count of
# the report before it, so the console can tell a growing backlog from a draining one.
gateway_outbox = Table(
    "gateway_outbox",
    metadata,
    Column("gateway_id", ID, primary_key=True),
    Column("reported_at", Float, nullable=False),
    Column("pending_records", Integer, nullable=False),
    Column("pending_instances", Integer, nullable=False),
    Column("pending_bytes", BigInteger, nullable=False),
    Column("parked", Integer, nullable=False),
    Column("oldest_pending_s", Float, nullable=False),
    Column("last_success_at", Float, nullable=True),  # the gateway's own: its last delivered job
    Column("previous_pending", Integer, nullable=True),
    Column("previous_reported_at", Float, nullable=True),
)

# -- what every process of one deployment must agree on (storage/deployment.py) --

# name -> value: the keyed fingerprint of the identity-data keys the data is
# written with, and where the blobs are (so `yingyun import` stores where the
# server reads).
deployment = Table(
    "deployment",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", TEXT, nullable=False),
    Column("recorded_at", Float, nullable=False),
)
