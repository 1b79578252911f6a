"""The long-lived collaborators every role shares, built from Settings."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .core.crypto import Vault, load_keys
from .settings import Settings
from .storage.db import Database
from .tenancy import Tenancy


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    tenancy: Tenancy

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> "Runtime":
        vault = Vault(load_keys(settings.data_dir))
        db = Database(settings.database_url)
        if migrate:
            db.migrate()
        tenancy = Tenancy(db, vault, token_grace_s=settings.token_grace_s, refresh_s=settings.tenancy_refresh_s)
        return cls(settings=settings, db=db, vault=vault, tenancy=tenancy)

    @functools.cached_property
    def blobs(self):
        """The blob store the settings name: a local folder, or s3://bucket/prefix."""
        from .storage.blobs_s3 import open_blob_store

        return open_blob_store(self.settings.blob_url or str(self.settings.blob_dir))

    def close(self) -> None:
        self.db.dispose()


def release_startup_memory() -> None:
    """Give the heap that start-up used and freed (migrations, imports) back to the system.

    A long-running process otherwise keeps it resident for its whole life; with a
    serve process and its receivers that adds up (the memory target of the ingest
    issue counts every process)."""
    import ctypes
    import gc

    gc.collect()
    # What start-up left is there for good: kept out of every later collection, so a
    # full collection under load walks only what requests made (shorter pauses).
    gc.freeze()
    try:
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
    except OSError:
        trim = None
    if trim is not None:
        trim(0)
