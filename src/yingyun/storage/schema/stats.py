"""Operations statistics (cloud/stats): the rollup of closed days, and the indexes its live day reads by time."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, PrimaryKeyConstraint, String, Table

from .base import ID, metadata
from .dicom import dicom_studies, instances
from .records import reports, studies
from .sync import sync_applied

# One row per zone + local day + hospital + modality; modality "*" holds the
# hospital's day as a whole (visits are distinct patients, so they do not add
# up across modalities). Only closed days are kept: what arrives is counted
# on the day it arrived, so a day that has ended no longer changes.
stats_daily = Table(
    "stats_daily",
    metadata,
    Column("zone", String(64), nullable=False),
    Column("day", String(10), nullable=False),  # yyyy-MM-dd in `zone`
    Column("hospital_id", ID, nullable=False),
    Column("modality", String(16), nullable=False),
    Column("studies", Integer, nullable=False),
    Column("studies_with_images", Integer, nullable=False),
    Column("instances", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("reports", Integer, nullable=False),
    Column("visits", Integer, nullable=False),
    PrimaryKeyConstraint("zone", "day", "hospital_id", "modality", name="pk_stats_daily"),
)

# The closed days that are summed into stats_daily (a day without data has a row here and none there).
stats_days = Table(
    "stats_days",
    metadata,
    Column("zone", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("computed_at", Float, nullable=False),
    PrimaryKeyConstraint("zone", "day", name="pk_stats_days"),
)

# A day is read by the time things arrived: these make that a range scan.
Index("ix_instances_received_at", instances.c.received_at)
Index("ix_studies_created_at", studies.c.created_at)
Index("ix_reports_created_at", reports.c.created_at)
Index("ix_dicom_studies_first_instance_at", dicom_studies.c.first_instance_at)
Index("ix_sync_applied_gateway_applied", sync_applied.c.gateway_id, sync_applied.c.applied_at)
