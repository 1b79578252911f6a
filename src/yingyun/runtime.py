"""The one factory of a process's shared collaborators, built from Settings.

Every kind of process opens one Runtime and takes from it what it shares;
nothing else constructs a blob store, an instance store, a group-commit
writer or a render cache (tests/test_architecture.py checks):

| process                                   | opened by              | creates / migrates        |
|-------------------------------------------|------------------------|---------------------------|
| `serve`, `gateway`, `cloud` starting      | `serve.run`            | data dir and keys; schema |
| their HTTP workers (`--workers` > 1)      | `serve.app_from_env`   | nothing                   |
| a DICOM receiver                          | `gateway/receiver.py`  | nothing                   |
| `yingyun admin …`, `yingyun import`       | `cli.context`          | nothing                   |
| `yingyun db upgrade`                      | `cli.db.db_upgrade`    | data dir and keys; schema |

A process that may not create refuses, with the reason, a data dir that is
not there, keys it does not have, a schema at another revision than this
program's, and keys that are not the ones the database's data is written
with (storage/deployment.py). Each collaborator is built once per process,
on first use, and closed by `close()`: the instance store is the ingest
path of C-STORE, STOW, sync and import (its caller-led group commit of
index rows and, on a local folder, the blob journal inside); `writer` is
the one group-commit thread of the other writes (RIS, partner API).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .core.crypto import (
    ENV_DATA_KEY,
    ENV_HASH_KEY,
    KEY_FILE_NAME,
    KeysUnavailable,
    Vault,
    keys_in_environment,
    load_keys,
)
from .settings import Settings
from .storage import datadir
from .storage.db import Database, head_revision, is_behind, sqlite_file
from .storage.deployment import KeysMismatch, check_keys
from .tenancy import Tenancy

if TYPE_CHECKING:
    from .archive.instances import InstanceStore
    from .storage.blobs import BlobStore
    from .storage.groupcommit import GroupCommit
    from .storage.render_cache import RenderCache


class OpenRefused(Exception):
    """This process may not work on the data dir / database as they are (the message says why)."""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    tenancy: Tenancy
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, create_keys: bool, migrate: bool) -> Runtime:
        """`create_keys`: a server starting, or `db upgrade` (makes the data dir,
        owner-only, and the key file when missing); `migrate`: bring the schema to
        this program's head. Without them, what is missing or different is refused
        (OpenRefused)."""
        made = _Made(settings.data_dir) if create_keys else None
        if made is not None:
            datadir.prepare(settings.data_dir, also=_local_blob_folders(settings))
        else:
            _require_existing(settings)
        try:
            keys = load_keys(settings.data_dir, create=create_keys)
        except KeysUnavailable as e:
            raise OpenRefused(str(e)) from e
        db = Database(settings.database_url)
        try:
            problem = schema_problem(db)
            if problem is not None and not (migrate and _can_migrate(db)):
                raise OpenRefused(problem)
            if migrate:
                db.migrate()
            try:
                check_keys(db, keys)
            except KeysMismatch as e:
                source = f"{ENV_DATA_KEY}/{ENV_HASH_KEY}" if keys_in_environment() else "the data dir's key file"
                raise OpenRefused(f"the keys here ({source}) do not match the database: {e}") from e
        except BaseException:
            db.dispose()
            if made is not None:
                made.undo()  # new keys for someone else's database: leave nothing behind
            raise
        vault = Vault(keys)
        tenancy = Tenancy(db, vault, token_grace_s=settings.token_grace_s, refresh_s=settings.tenancy_refresh_s)
        return cls(settings=settings, db=db, vault=vault, tenancy=tenancy)

    # -- what the process shares (built on first use) -------------------------

    @functools.cached_property
    def blobs(self) -> BlobStore:
        """The blob store the settings name: a local folder, or s3://bucket/prefix."""
        from .storage.factory import open_blob_store

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
        from .storage.render_cache import RenderCache

        return RenderCache(self.settings.data_dir / "render-cache", self.settings.render_cache_bytes,
                           max_inflated=self.settings.max_inflated_bytes)

    def close(self) -> None:
        """Close what was built (in reverse: the instance store flushes its journal through
        the database), then the database."""
        while self._closers:
            self._closers.pop()()
        self.db.dispose()


def open_database(settings: Settings) -> Database:
    """The database of an existing deployment, to read its schema revision with
    (no keys needed): refuses a data dir or SQLite file that is not there."""
    _require_existing(settings, keys=False)
    return Database(settings.database_url)


def schema_problem(db: Database) -> str | None:
    """What keeps this program from using the database's schema (None: at its head)."""
    have, want = db.revision(), head_revision()
    if have == want:
        return None
    if have is None:
        hint = "the database was never migrated: start the server, or run `yingyun db upgrade`"
    elif is_behind(have):
        hint = "run `yingyun db upgrade` (or start the server of this version)"
    else:
        hint = "the database is newer than this program: use the yingyun the server runs"
    return f"schema at revision {have or '(none)'}, this program expects {want}: {hint}"


def _can_migrate(db: Database) -> bool:
    """Whether this program's migrations lead from the database's revision (never
    from a newer program's)."""
    have = db.revision()
    return have is None or have == head_revision() or is_behind(have)


def _local_blob_folders(settings: Settings) -> tuple[Path, ...]:
    """A local blob folder outside the data dir (which `datadir.prepare` covers)."""
    if settings.blob_location.startswith("s3://"):
        return ()
    folder = Path(settings.blob_location)
    return () if folder.is_relative_to(settings.data_dir.resolve()) else (folder,)


def _require_existing(settings: Settings, *, keys: bool = True) -> None:
    data_dir = settings.data_dir.resolve()
    db_file = sqlite_file(settings.database_url)
    in_data_dir = db_file is not None and db_file.resolve().parent == data_dir
    if not data_dir.is_dir():
        where = (f"give the server's (--data-dir or YINGYUN_DATA_DIR), or make one with `yingyun db upgrade "
                 f"--data-dir {settings.data_dir}`")
        if in_data_dir:
            raise OpenRefused(f"no data dir at {data_dir}: {where}")
        if keys and not keys_in_environment():
            raise OpenRefused(f"no data dir at {data_dir}, so no key file: set {ENV_DATA_KEY} and {ENV_HASH_KEY} as "
                              f"the servers have them, or {where}")
    if db_file is not None and not db_file.exists():
        raise OpenRefused(f"no database at {db_file}: give the server's data dir or --database-url, or make it with "
                          "`yingyun db upgrade`")


class _Made:
    """What `Runtime.open` is about to create, to take back if the open is refused."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir if not data_dir.exists() else None
        key_file = data_dir / KEY_FILE_NAME
        self.key_file = key_file if not keys_in_environment() and not key_file.exists() else None

    def undo(self) -> None:
        if self.key_file is not None:
            self.key_file.unlink(missing_ok=True)
        if self.data_dir is not None:
            (self.data_dir / datadir.MARKER).unlink(missing_ok=True)
            try:
                self.data_dir.rmdir()
            except OSError:
                pass  # something else is in it by now: not ours to remove


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
