"""The one factory of a process's shared collaborators, built from Settings.

Every kind of process opens one Runtime and takes from it what it shares;
nothing else constructs a blob store, an instance store, a group-commit
writer or a render cache (tests/test_architecture.py checks): `serve.run`
for the serve, gateway and cloud processes (and `serve.app_from_env` in
each HTTP worker), `gateway/receiver.py` in a DICOM receiver, the CLI for
`import` and the admin commands. Each collaborator is built once per
process, on first use, and closed by `close()`: the instance store is the
ingest path of C-STORE, STOW, sync and import (its caller-led group commit
of index rows and, on a local folder, the blob journal inside); `writer` is
the one group-commit thread of the other writes (RIS, partner API).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .core.crypto import Vault, load_keys
from .settings import Settings
from .storage.db import Database
from .tenancy import Tenancy

if TYPE_CHECKING:
    from .archive.instances import InstanceStore
    from .core.render import RenderCache
    from .storage.blobs import BlobStore
    from .storage.groupcommit import GroupCommit


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    tenancy: Tenancy
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, create_keys: bool, migrate: bool) -> Runtime:
        """`create_keys`: make the key file when missing; `migrate`: bring the schema to head."""
        vault = Vault(load_keys(settings.data_dir, create=create_keys))
        db = Database(settings.database_url)
        if migrate:
            db.migrate()
        tenancy = Tenancy(db, vault, token_grace_s=settings.token_grace_s, refresh_s=settings.tenancy_refresh_s)
        return cls(settings=settings, db=db, vault=vault, tenancy=tenancy)

    # -- what the process shares (built on first use) -------------------------

    @functools.cached_property
    def blobs(self) -> BlobStore:
        """The blob store the settings name: a local folder, or s3://bucket/prefix."""
        from .storage.blobs_s3 import open_blob_store

        return open_blob_store(self.settings.blob_location)

    @functools.cached_property
    def instances(self) -> InstanceStore:
        """The process's one ingest path for DICOM instances (C-STORE, STOW, sync, import)."""
        from .archive.instances import InstanceStore
        from .gateway.outbox import instance_hook

        store = InstanceStore(self.db, self.blobs, min_free_bytes=self.settings.min_free_bytes,
                              on_instance=instance_hook(self.settings, self.db),
                              max_inflated=self.settings.max_inflated_bytes)
        self._closers.append(store.close)
        return store

    @functools.cached_property
    def writer(self) -> GroupCommit:
        """The process's one group-commit writer (RIS, partner API, sync records)."""
        from .storage.groupcommit import GroupCommit

        # One writer per process: under load it takes everything queued into one
        # transaction. Measured on PostgreSQL (bench/ris_api.py, 16 connections): 4
        # writers gave 762 req/s, p99 53 ms; one gives 1,079 req/s, p99 27 ms.
        writer = GroupCommit(self.db, name="writer")
        self._closers.append(writer.close)
        return writer

    @functools.cached_property
    def render_cache(self) -> RenderCache:
        from .core.render import RenderCache

        return RenderCache(self.settings.data_dir / "render-cache", self.settings.render_cache_bytes,
                           max_inflated=self.settings.max_inflated_bytes)

    def close(self) -> None:
        """Close what was built (in reverse: the instance store flushes its journal through
        the database), then the database."""
        while self._closers:
            self._closers.pop()()
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
