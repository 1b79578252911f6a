"""Every domain's collector on the app's registry: the one place /metrics is put together."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ..settings import Settings
from ..storage.db import Database
from .commitment import CommitmentCollector
from .dicom import ReceiverCollector
from .state import StateCollector


def register(registry: CollectorRegistry, *, db: Database, settings: Settings) -> None:
    """Add every domain's collector to `registry` (the app's, beside the HTTP metrics)."""
    registry.register(StateCollector(db, settings))
    if settings.dicom_enabled:
        registry.register(ReceiverCollector(settings.run_dir))
        registry.register(CommitmentCollector(db))
