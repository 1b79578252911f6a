"""Reconciliation that heals (gateway/heal.py): how each PACS is retrieved from, and what each study's heal found.

`heal_studies` keeps one row per study the reconciliation found short of
images: what the hospital's PACS was asked and listed, what was retrieved
from it, and what it lacks. A `final` row names the SOP Instance UIDs the
PACS listed but could not deliver (`missing_uids`, a JSON list) and counts
those it does not even list (`unlisted`); it is tried again only when a newer
reconciliation log speaks of the study (`log_pk`) or an operator asks.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, UniqueConstraint

from .base import ID, TEXT, UID, metadata

# How the gateway retrieves from a registered PACS (`yingyun admin pacs add --retrieve move|get`);
# a PACS without a row is asked with C-MOVE.
heal_peers = Table(
    "heal_peers",
    metadata,
    Column("ae_title", String(16), primary_key=True),
    Column("retrieve", String(8), nullable=False),  # move | get
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

heal_studies = Table(
    "heal_studies",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("hospital_id", ID, nullable=False),
    Column("study_id", String(128), nullable=False),
    Column("study_uid", UID, nullable=True),
    Column("log_pk", Integer, nullable=True),  # the reconciliation entry the last attempt answered
    Column("pacs_ae", String(16), nullable=True),
    Column("retrieve", String(8), nullable=True),
    Column("state", String(8), nullable=False),  # healed | final | failed
    Column("attempts", Integer, nullable=False),
    Column("expected", Integer, nullable=False),  # images the hospital's log expects
    Column("listed", Integer, nullable=False),  # instances the PACS listed at the image level
    Column("asked", Integer, nullable=False),  # of those, absent here and retrieved for
    Column("retrieved", Integer, nullable=False),  # of those, stored here by the last attempt
    Column("retrieved_total", Integer, nullable=False),  # over every attempt
    Column("missing_uids", TEXT, nullable=False),  # JSON: listed by the PACS, not delivered
    Column("unlisted", Integer, nullable=False),  # expected but not listed by the PACS
    Column("detail", TEXT, nullable=False),  # why, in words without patient data
    Column("attempted_at", Float, nullable=False),
    Column("next_at", Float, nullable=False),  # a failed attempt is retried from then
    UniqueConstraint("hospital_id", "study_id"),
)
Index("ix_heal_studies_state", heal_studies.c.state, heal_studies.c.next_at)
