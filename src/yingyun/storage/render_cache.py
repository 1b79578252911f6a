"""Rendered frames kept on disk (``RenderCache``), so a viewer scrolling back
and forth through a series does not pay for decoding twice (core/render.py
renders them).

Its files are written whole or not at all (a temp file renamed over the
name) and created 0600 in 0700 folders: rendered images are patient data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from ..core.dicom import DEFAULT_MAX_INFLATED
from ..core.render import RENDER_VERSION, RenderOptions, Source, render

KeyPart = str | int | float | None
# Frozen: one instance serves as every call's default.
_DEFAULT_OPTIONS = RenderOptions()


class RenderCache:
    """Rendered bytes on disk, keyed by object identity + version + options.

    Files live in 256 sub-folders named by the first byte of the key hash.
    Every hit younger than `touch_interval` is served without a write; older
    hits get their mtime bumped, so mtime is "last used, give or take a
    minute" and eviction removes the oldest mtimes first. The size check is
    an in-memory counter; the folder is only walked when the counter passes
    the cap or `rescan_interval` has gone by (other processes may share the
    folder). Eviction goes down to `low_water` x cap so the walk is not
    repeated on every write.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        max_bytes: int = 2 * 1024**3,
        *,
        low_water: float = 0.9,
        rescan_interval: float = 300.0,
        touch_interval: float = 60.0,
        max_inflated: int = DEFAULT_MAX_INFLATED,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        self.max_inflated = max_inflated  # handed to render() for what it reads
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # rendered images are patient data
        self.max_bytes = int(max_bytes)
        self.low_water = float(low_water)
        self.rescan_interval = float(rescan_interval)
        self.touch_interval = float(touch_interval)
        self._lock = threading.Lock()
        self._evict_lock = threading.Lock()
        self._inflight: dict[str, Future[bytes]] = {}
        self._size = 0
        self._last_scan = 0.0
        self._evict()

    # -- keys and paths

    @staticmethod
    def key(key_parts: Sequence[KeyPart], opts: RenderOptions) -> str:
        """Hex digest naming the cache entry. `key_parts` must identify the
        object *and its version* (e.g. (instance_uid, etag)): the cache never
        checks the source, so a changed file under an old key is served stale."""
        if isinstance(key_parts, (str, bytes)):
            raise TypeError("key_parts must be a sequence such as (instance_uid, etag), not a string")
        parts = []
        for part in key_parts:
            if part is not None and not isinstance(part, (str, int, float)):
                raise TypeError("key_parts items must be str, int, float or None")
            parts.append(part)
        payload = json.dumps([RENDER_VERSION, parts, dataclasses.asdict(opts)], separators=(",", ":"), sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _path(self, digest: str, fmt: str) -> Path:
        return self.root / digest[:2] / f"{digest}.{'jpg' if fmt == 'jpeg' else fmt}"

    # -- read / write

    def _read(self, path: Path) -> bytes | None:
        try:
            with open(path, "rb") as f:
                data = f.read()
                mtime = os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            return None
        if time.time() - mtime > self.touch_interval:
            try:
                os.utime(path)
            except OSError:
                pass  # evicted meanwhile: the caller has the bytes anyway
        return data

    def _write(self, path: Path, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # readers see the old file, the new one, or none; never half
        except OSError:
            _unlink(str(tmp))
            raise
        with self._lock:
            self._size += len(data)
            due = self._size > self.max_bytes or time.monotonic() - self._last_scan > self.rescan_interval
        if due:
            self._evict()

    def get(self, key_parts: Sequence[KeyPart], opts: RenderOptions = _DEFAULT_OPTIONS) -> bytes | None:
        return self._read(self._path(self.key(key_parts, opts), opts.fmt))

    def put(self, key_parts: Sequence[KeyPart], opts: RenderOptions, data: bytes) -> None:
        self._write(self._path(self.key(key_parts, opts), opts.fmt), data)

    def get_or_render(
        self,
        key_parts: Sequence[KeyPart],
        source_opener: Callable[[], Source],
        opts: RenderOptions = _DEFAULT_OPTIONS,
    ) -> bytes:
        """Cached bytes, or render, store and return them.

        `source_opener` is called only on a miss; a file object it returns is
        closed here. Concurrent misses for the same key render once (the
        viewer prefetches neighbours while the user scrolls onto them) and
        the others wait for that result or its exception. Failures are not
        cached.
        """
        digest = self.key(key_parts, opts)
        path = self._path(digest, opts.fmt)
        data = self._read(path)
        if data is not None:
            return data
        with self._lock:
            pending = self._inflight.get(digest)
            if pending is None:
                mine: Future[bytes] = Future()
                self._inflight[digest] = mine
        if pending is not None:
            return pending.result()
        try:
            # Another thread may have finished between our miss and the lock.
            data = self._read(path)
            if data is None:
                source = source_opener()
                try:
                    data = render(source, opts, max_inflated=self.max_inflated)
                finally:
                    close = getattr(source, "close", None)
                    if callable(close):
                        close()
                try:
                    self._write(path, data)
                except OSError:
                    pass  # a full or read-only cache disk must not fail the request
            mine.set_result(data)
            return data
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(digest, None)

    # -- size control

    def size_bytes(self) -> int:
        """Current estimate of the folder's size."""
        with self._lock:
            return self._size

    def clear(self) -> int:
        """Remove every rendered file, returning how many: after a purge no rendering of a purged study may
        stay on disk, and the cache cannot tell whose a file is (its name is a hash)."""
        removed = 0
        for sub in os.scandir(self.root):
            if sub.is_dir(follow_symlinks=False):
                for entry in os.scandir(sub.path):
                    removed += _unlink(entry.path)
        with self._lock:
            self._size = 0
        return removed

    def _evict(self) -> None:
        # A writer that finds the walk lock taken returns at once, having
        # already added its bytes to the counter; the walker re-reads the
        # counter after releasing the lock, so such a write is never left
        # over the cap. Bounded, in case files cannot be deleted.
        for _ in range(3):
            if not self._evict_lock.acquire(blocking=False):
                return
            try:
                over = self._walk_and_trim()
            finally:
                self._evict_lock.release()
            with self._lock:
                over = over or self._size > self.max_bytes
            if not over:
                return

    def _walk_and_trim(self) -> bool:
        """One pass over the folder; True if the total is still over the cap."""
        with self._lock:
            counted_before = self._size
        entries: list[tuple[float, int, str]] = []
        total = 0
        now = time.time()
        for sub in os.scandir(self.root):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if entry.name.endswith(".tmp"):
                    # Left by a crashed writer; a live one finishes in ms.
                    if now - st.st_mtime > 3600:
                        _unlink(entry.path)
                    continue
                entries.append((st.st_mtime, st.st_size, entry.path))
                total += st.st_size
        if total > self.max_bytes:
            target = self.max_bytes * self.low_water
            entries.sort()
            for _, size, path in entries:
                if total <= target:
                    break
                if _unlink(path):
                    total -= size
        with self._lock:
            # Writes during the walk may or may not have been seen by it;
            # counting them twice only makes the next walk come sooner.
            self._size = total + max(self._size - counted_before, 0)
            self._last_scan = time.monotonic()
            return self._size > self.max_bytes


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
