"""Backups of a deployment while it runs, their verification, and restoring one into a new data dir.

A backup is a folder:

| path                | what                                                                       |
|---------------------|----------------------------------------------------------------------------|
| `index/yingyun.db`  | SQLite: a copy made with SQLite's online backup API (one read transaction) |
| `index/yingyun.pgdump` | PostgreSQL: `pg_dump --format=custom` (one snapshot transaction)        |
| `blobs/<key>`       | a copy of each blob of a local blob store                                  |
| `blobs.json`        | S3: the manifest of the objects (key, size) at the snapshot, not copies     |
| `keys.json`         | the data dir's key file, only with `include_keys`                          |
| `manifest.json`     | SHA-256 and size of every file above; written last, atomically             |

Why this order makes the copy consistent: the index is copied first, in one
transaction, and the blobs after. An instance is indexed only once its blob is
in the store (or in the blob journal, which the index copy carries and the
restored server replays when it opens), so every instance the index copy knows
has its bytes in the backup; blobs that arrived after the snapshot are copied
too and are harmless (nothing refers to them).

Incremental: blobs are immutable under their key (a changed re-send gets a new
key, archive/layout.py), so a blob the previous manifest lists with the same
size and modification time as the store's file is not read again: the second
backup into the same folder copies only what is new, and removes what the
store no longer has.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from sqlalchemy import make_url

from .blobs import BlobStore, LocalBlobStore
from .datadir import DIR_MODE, FILE_MODE
from .db import Database, sqlite_file

FORMAT = 1
MANIFEST = "manifest.json"
INDEX_SQLITE = "index/yingyun.db"
INDEX_PG = "index/yingyun.pgdump"
BLOB_LIST = "blobs.json"
KEYS = "keys.json"
CHUNK = 1 << 20
COPY_THREADS = 2  # hashlib and file I/O release the GIL: two copies keep a disk and a core busy


class BackupError(Exception):
    """The backup or restore cannot go on (the message says why)."""


@dataclass
class BackupResult:
    folder: Path
    files: int = 0
    copied: int = 0  # blobs copied this time (the rest were already there)
    bytes_copied: int = 0
    bytes_total: int = 0
    removed: int = 0
    seconds: float = 0.0
    keys_included: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "files": self.files, "copied": self.copied,
                "bytesCopied": self.bytes_copied, "bytesTotal": self.bytes_total, "removed": self.removed,
                "seconds": round(self.seconds, 3), "keysIncluded": self.keys_included}


@dataclass
class VerifyResult:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "missing": self.missing, "corrupt": self.corrupt, "ok": self.ok}


def backup(db: Database, blobs: BlobStore, to: Path, *, key_file: Path | None = None,
           now: Callable[[], float] = time.time) -> BackupResult:
    """Copy the index, then the blobs, into `to` (module doc); `key_file`: include the keys."""
    started = time.monotonic()
    to.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    previous = read_manifest(to).get("files", {}) if (to / MANIFEST).exists() else {}
    files: dict[str, dict[str, Any]] = {}
    result = BackupResult(folder=to)

    index_rel = _copy_index(db, to)
    files[index_rel] = _entry(to / index_rel)
    result.bytes_copied += files[index_rel]["size"]

    if isinstance(blobs, LocalBlobStore):
        _copy_blobs(blobs, to, previous, files, result)
    else:
        listing = [{"key": k, "size": blobs.size(k)} for k in blobs.iter_keys()]
        _write_atomic(to / BLOB_LIST, orjson.dumps({"objects": listing}))
        files[BLOB_LIST] = _entry(to / BLOB_LIST)

    stale_keys = to / KEYS
    if key_file is not None:
        with open(key_file, "rb") as src:
            _write_atomic(stale_keys, src)
        files[KEYS] = _entry(stale_keys)
        result.keys_included = True
    else:
        stale_keys.unlink(missing_ok=True)  # a key file of an earlier backup must not outlive the choice

    for rel in set(previous) - set(files):  # what the store no longer has (purged), or the other index form
        if (to / rel).exists():
            (to / rel).unlink()
            result.removed += 1
    manifest = {"format": FORMAT, "createdAt": now(), "database": db.dialect, "revision": db.revision(),
                "blobs": "local" if isinstance(blobs, LocalBlobStore) else "manifest", "files": files}
    _write_atomic(to / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    result.files = len(files)
    result.bytes_total = sum(e["size"] for e in files.values())
    result.seconds = time.monotonic() - started
    return result


def verify(folder: Path) -> VerifyResult:
    """Re-read every file the manifest lists and compare its SHA-256."""
    manifest = read_manifest(folder)
    result = VerifyResult()
    entries = sorted(manifest["files"].items())

    def check(item: tuple[str, dict[str, Any]]) -> tuple[str, str | None]:
        rel, want = item
        path = folder / rel
        if not path.is_file():
            return rel, "missing"
        return rel, None if _sha256(path) == want["sha256"] else "corrupt"

    with ThreadPoolExecutor(COPY_THREADS) as pool:
        for rel, problem in pool.map(check, entries):
            result.checked += 1
            if problem == "missing":
                result.missing.append(rel)
            elif problem == "corrupt":
                result.corrupt.append(rel)
    return result


def restore(folder: Path, data_dir: Path) -> VerifyResult:
    """Verify the backup, then make `data_dir` (which must not exist or be empty) from it.

    Only a SQLite index is restored here (PostgreSQL: `pg_restore`, docs/backup.md)."""
    manifest = read_manifest(folder)
    if INDEX_SQLITE not in manifest["files"]:
        raise BackupError(f"{folder} holds a PostgreSQL index: restore it with pg_restore (docs/backup.md)")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty: restore into a new data dir")
    checked = verify(folder)
    if not checked.ok:
        raise BackupError(f"the backup is damaged: {len(checked.missing)} missing, {len(checked.corrupt)} corrupt "
                          f"(first: {(checked.missing + checked.corrupt)[0]}); nothing was restored")
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    blobs = LocalBlobStore(data_dir / "blobs")
    restored: list[str] = []
    for rel in manifest["files"]:
        if rel.startswith("blobs/"):
            with open(folder / rel, "rb") as src:
                blobs.put_unsynced(rel[len("blobs/"):], src)
            restored.append(rel[len("blobs/"):])
        elif rel in (INDEX_SQLITE, KEYS):
            from ..core.crypto import KEY_FILE_NAME

            with open(folder / rel, "rb") as src:
                _write_atomic(data_dir / ("yingyun.db" if rel == INDEX_SQLITE else KEY_FILE_NAME), src)
    blobs.sync_puts(restored)
    return checked


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise BackupError(f"no backup at {folder}: {MANIFEST} is missing") from None
    except ValueError as e:
        raise BackupError(f"{path} is not a backup manifest: {e}") from e
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{path} is not a backup manifest of format {FORMAT}")
    return manifest


# -- the index ---------------------------------------------------------------


def _copy_index(db: Database, to: Path) -> str:
    db_file = sqlite_file(db.url)
    if db_file is not None:
        target = to / INDEX_SQLITE
        target.parent.mkdir(mode=DIR_MODE, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp~")
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        # One step (pages=-1): the whole copy is one read transaction, so it is one moment of the
        # database; in WAL mode the server's writers go on meanwhile.
        with closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as src, \
                closing(sqlite3.connect(tmp)) as dst:
            src.backup(dst)
        _fsync_file(tmp)
        os.replace(tmp, target)
        (to / INDEX_PG).unlink(missing_ok=True)
        return INDEX_SQLITE
    return _dump_postgres(db, to)


def _dump_postgres(db: Database, to: Path) -> str:
    pg_dump = shutil.which("pg_dump") or _debian_pg_tool("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump is not installed: install the PostgreSQL client of the server's version")
    url = make_url(db.url)
    target = to / INDEX_PG
    target.parent.mkdir(mode=DIR_MODE, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp~")
    env = dict(os.environ, PGPASSWORD=url.password or "")
    args = [pg_dump, "--format=custom", "--no-owner", "--file", str(tmp), "--host", url.host or "localhost",
            "--port", str(url.port or 5432), "--username", url.username or "postgres", url.database or "postgres"]
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    _fsync_file(tmp)
    os.replace(tmp, target)
    return INDEX_PG


def _debian_pg_tool(name: str) -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else None


# -- the blobs ---------------------------------------------------------------


def _copy_blobs(blobs: LocalBlobStore, to: Path, previous: dict[str, dict[str, Any]],
                files: dict[str, dict[str, Any]], result: BackupResult) -> None:
    root = Path(blobs.root)
    copies = LocalBlobStore(to / "blobs")
    copied: list[str] = []

    def copy(key: str) -> dict[str, Any] | None:
        try:
            mtime = os.stat(root / key).st_mtime_ns
            digest = hashlib.sha256()
            with blobs.open(key) as src:
                size = copies.put_unsynced(key, _hashed(src, digest))
        except (FileNotFoundError, KeyError):  # purged meanwhile (BlobNotFound is a KeyError)
            return None
        return {"sha256": digest.hexdigest(), "size": size, "mtimeNs": mtime}

    # The unchanged blobs (all but the new ones, on a second backup) are settled here, a stat or two each:
    # only what must be read and copied goes to the threads, so an incremental backup costs little more than
    # the walk of the store.
    # (Paths as strings: pathlib's `/` cost more than the stat itself, 10,000 times over.)
    src_dir, copy_dir = os.path.join(root, ""), os.path.join(to / "blobs", "")
    fresh: list[str] = []
    for key in blobs.iter_keys():
        rel = "blobs/" + key
        try:
            st = os.stat(src_dir + key)
        except FileNotFoundError:
            continue  # removed since it was listed (purged): not part of the snapshot
        before = previous.get(rel)
        if before is not None and before.get("mtimeNs") == st.st_mtime_ns and before["size"] == st.st_size \
                and _size_of(copy_dir + key) == st.st_size:
            files[rel] = before
        else:
            fresh.append(key)
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        for key, entry in zip(fresh, pool.map(copy, fresh), strict=True):
            if entry is None:
                continue
            files["blobs/" + key] = entry
            copied.append(key)
            result.copied += 1
            result.bytes_copied += entry["size"]
    copies.sync_puts(copied)  # one syncfs(2) for all of them, before the manifest names them


def _size_of(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _hashed(src: BinaryIO, digest: Any) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        yield chunk


# -- files -------------------------------------------------------------------


def _entry(path: Path) -> dict[str, Any]:
    return {"sha256": _sha256(path), "size": path.stat().st_size}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes | BinaryIO) -> None:
    tmp = path.with_name(path.name + ".tmp~")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with open(fd, "wb") as f:
        if isinstance(data, bytes):
            f.write(data)
        else:
            shutil.copyfileobj(data, f, CHUNK)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
