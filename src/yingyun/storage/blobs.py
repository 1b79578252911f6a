"""The blob store: immutable byte objects by key, and its local-folder form.

Guarantees every implementation gives (checked by tests/storage/test_blobs.py,
which is written as a conformance suite over all implementations):

* When ``put`` returns, the object is durable (survives a crash or a power
  cut) and fully visible under its key. A crash during ``put`` leaves nothing
  visible under the key, neither a partial object nor a mix of old and new:
  a put over an existing key replaces it atomically, and readers that opened
  the old object keep reading the old bytes.
* Keys are '/'-separated segments of ``[A-Za-z0-9._-]``, with no empty, "."
  or ".." segment and no leading '/'. Anything else raises ``InvalidKey``
  before any I/O, so a hostile UID can never become a path outside the store.
* ``iter_keys`` lists complete objects only, in ascending byte order of the
  key (as S3's ListObjectsV2 does), so a scan can be resumed.

``LocalBlobStore`` maps a key to the file ``root/key``. A put writes a temp
file next to the final name (``.tmp~<random>``: the '~' makes it impossible
as a key, so open/iter_keys can never see it), fdatasyncs it, renames it over
the final name and fsyncs the folder. The first time a process puts into a
folder it also fsyncs the parent of every level below the root (creating
missing ones), then remembers the folder: later puts there cost exactly
open, write(v), fdatasync, close, rename, open, fsync, close; puts into the
same folder at the same time share that last folder fsync (see
``_SharedDirSync``). Temp files left
by a crash are removed by ``cleanup_temp_files``. Empty folders are removed
on delete. Files are created 0600 and folders 0700, whatever the umask:
they hold patient data (storage/datadir.py).

A key that is a path prefix of another ("a/b" and "a/b/c") cannot exist in a
folder; the second put raises InvalidKey. ``archive.layout.instance_key``
never produces such pairs.

Stores whose objects are files on this machine also offer ``LocalFiles``:
the fast paths only a folder allows (puts made durable in batches, the free
space, a file path, the clean-up of a crash's temp files). Callers test for
it with ``isinstance(store, LocalFiles)`` and work without it otherwise.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import re
import secrets
import stat
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Protocol, runtime_checkable

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "InvalidKey",
    "LocalBlobStore",
    "LocalFiles",
    "validate_key",
    "validate_prefix",
]


class InvalidKey(ValueError):
    """A key (or listing prefix) outside the key grammar."""


class BlobNotFound(KeyError):
    """No object under the key."""


BlobData = bytes | bytearray | memoryview | Iterable[bytes] | BinaryIO


@runtime_checkable
class BlobStore(Protocol):
    """Stores immutable byte objects by key (guarantees in the module doc)."""

    def put(self, key: str, data: BlobData, *, prefix: bytes = b"") -> int:
        """Store ``prefix`` then ``data`` under ``key``; return the object's
        size. ``prefix`` lets a caller prepend the DICOM file meta to received
        dataset bytes without concatenating them in memory. A stream is read
        from its current position to its end."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A binary reader of the object; BlobNotFound if missing."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes; BlobNotFound if missing (the sync sizes
        a multipart body before it streams the objects in)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; no error if it is already gone."""
        ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (a plain string prefix, not
        necessarily ending at a '/'), in ascending order."""
        ...


@runtime_checkable
class LocalFiles(Protocol):
    """What a store whose objects are files on this machine adds (module doc).

    Optional: nothing may rely on a store having it, only go faster when it does."""

    @property
    def fsync(self) -> bool:
        """Whether puts are made durable at all (False only for tests and scratch stores)."""
        ...

    def put_unsynced(self, key: str, data: BlobData, *, prefix: bytes = b"") -> int:
        """``put`` without the file's and the folder's flushes: the object is
        visible at once but may be missing or torn after a power cut until
        ``sync_puts`` covers it. For a caller that keeps the bytes durable
        elsewhere meanwhile (storage/blobjournal.py)."""
        ...

    def sync_puts(self, keys: Iterable[str]) -> None:
        """Make objects put with ``put_unsynced`` durable."""
        ...

    def free_bytes(self) -> int:
        """Free space where new objects land."""
        ...

    def local_path(self, key: str) -> str:
        """The file of the key (it may not exist)."""
        ...

    def cleanup_temp_files(self, older_than_seconds: float = 3600.0) -> int:
        """Remove what puts that never finished left; returns how many."""
        ...


# --------------------------------------------------------------------------
# Keys

_SEGMENT = r"[A-Za-z0-9._-]+"
_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PREFIX_RE = re.compile(r"[A-Za-z0-9._/-]*")
_SEGMENT_RE = re.compile(_SEGMENT)


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid key, else raise InvalidKey."""
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise InvalidKey("invalid blob key")
    for segment in key.split("/"):
        if segment == "." or segment == "..":
            raise InvalidKey("invalid blob key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start keys (a partial last segment is fine), else raise InvalidKey."""
    if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None or prefix.startswith("/"):
        raise InvalidKey("invalid key prefix")
    complete = prefix.split("/")[:-1]  # the last part may be a partial segment
    for segment in complete:
        if segment in ("", ".", ".."):
            raise InvalidKey("invalid key prefix")
    return prefix


# --------------------------------------------------------------------------
# Local folder

_TMP_PREFIX = ".tmp~"
# Temp names unique without a getrandom() per put: random per process, then a counter.
_TMP_SALT = secrets.token_hex(8)
_TMP_COUNTER = itertools.count()
_PUT_ATTEMPTS = 10  # a folder pruned under a put is made again; deletes racing puts rarely win twice
_COPY_CHUNK = 1024 * 1024
# Directories known to exist durably. Bounded so a long-running receiver
# does not grow it forever; clearing only costs a few stat/mkdir calls.
_DIR_CACHE_MAX = 65536
_FILE_MODE = 0o600  # PHI: owner-only
_DIR_MODE = 0o700
_sync_data = getattr(os, "fdatasync", os.fsync)


def _find_syncfs() -> Any:  # the libc function (ctypes), or None
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


_syncfs = _find_syncfs()


class LocalBlobStore:
    """BlobStore and LocalFiles over a folder (guarantees and layout in the module doc).

    ``fsync=False`` drops the durability guarantee (atomic visibility stays)
    and is meant for tests and scratch stores only.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._fsync = fsync
        created = not os.path.isdir(self._root)
        os.makedirs(self._root, mode=_DIR_MODE, exist_ok=True)
        if created and fsync:
            _fsync_dir(os.path.dirname(self._root))
        self._ready_dirs: set[str] = {self._root}
        self._dir_sync = _SharedDirSync()

    @property
    def root(self) -> str:
        return self._root

    def __repr__(self) -> str:
        return f"LocalBlobStore({self._root!r}, fsync={self._fsync})"

    def _path(self, key: str) -> str:
        return f"{self._root}/{validate_key(key)}"

    # -- writing -----------------------------------------------------------

    @property
    def fsync(self) -> bool:
        return self._fsync

    def put(self, key: str, data: BlobData, *, prefix: bytes = b"") -> int:
        return self._put(key, data, prefix, durable=True)

    def put_unsynced(self, key: str, data: BlobData, *, prefix: bytes = b"") -> int:
        """New folders are still made durable at once (LocalFiles.put_unsynced)."""
        return self._put(key, data, prefix, durable=False)

    def _put(self, key: str, data: BlobData, prefix: bytes, *, durable: bool) -> int:
        path = self._path(key)
        directory, _, _ = path.rpartition("/")
        for attempt in range(_PUT_ATTEMPTS):
            self._ensure_dir(directory)
            tmp = f"{directory}/{_TMP_PREFIX}{_TMP_SALT}-{next(_TMP_COUNTER)}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
            except FileNotFoundError:
                # A concurrent delete pruned the (cached) directory; redo it.
                self._ready_dirs.discard(directory)
                if attempt == _PUT_ATTEMPTS - 1:
                    raise
                continue
            except NotADirectoryError as exc:
                raise InvalidKey("a parent of the key is an existing object") from exc
            break
        try:
            try:
                size = _write_all(fd, data, prefix)
                if self._fsync and durable:
                    _sync_data(fd)
            finally:
                os.close(fd)
            try:
                os.replace(tmp, path)
            except IsADirectoryError as exc:
                raise InvalidKey("the key is a prefix of existing keys") from exc
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if self._fsync and durable:
            try:
                self._dir_sync.sync(directory)
            except FileNotFoundError:
                # A delete of this very key, right after the rename, pruned the
                # folder: there is no entry left to make durable.
                pass
        return size

    def sync_puts(self, keys: Iterable[str]) -> None:
        """Make objects put with ``put_unsynced`` durable. On Linux one
        syncfs(2) of the store's file system covers any number of them (a
        batch of hundreds costs about what one file's fdatasync does);
        elsewhere each file and each folder is flushed. A key deleted
        meanwhile is skipped."""
        if not self._fsync:
            return
        if _syncfs is not None:
            fd = os.open(self._root, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _syncfs(fd) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), self._root)
            finally:
                os.close(fd)
            return
        directories = set()
        for key in keys:
            path = self._path(key)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                _sync_data(fd)
            finally:
                os.close(fd)
            directories.add(path.rpartition("/")[0])
        for directory in directories:
            try:
                _fsync_dir(directory)
            except FileNotFoundError:
                pass

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._ready_dirs:
            return
        for attempt in range(3):
            try:
                self._make_dirs(directory)
                return
            except FileNotFoundError:
                # A concurrent delete pruned a cached ancestor: forget the
                # whole line and build it again.
                d = directory
                while len(d) > len(self._root):
                    self._ready_dirs.discard(d)
                    d = d.rpartition("/")[0]
                if attempt == 2:
                    raise

    def _make_dirs(self, directory: str) -> None:
        # Every level below the nearest known-durable ancestor gets its entry
        # fsynced in its parent, whether this put created it or found it (a
        # folder left by a process that died before its fsync is not durable
        # yet), so the object survives a power cut along with its path.
        chain: list[str] = []
        d = directory
        while d not in self._ready_dirs and len(d) > len(self._root):
            chain.append(d)
            d = d.rpartition("/")[0]
        for d in reversed(chain):
            try:
                os.mkdir(d, _DIR_MODE)
            except FileExistsError:
                if not os.path.isdir(d):
                    raise InvalidKey("a parent of the key is an existing object") from None
            except NotADirectoryError as exc:
                raise InvalidKey("a parent of the key is an existing object") from exc
            if self._fsync:
                _fsync_dir(d.rpartition("/")[0])
        if len(self._ready_dirs) + len(chain) > _DIR_CACHE_MAX:
            self._ready_dirs.clear()
            self._ready_dirs.add(self._root)
        self._ready_dirs.update(chain)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except (IsADirectoryError, PermissionError, NotADirectoryError):
            # unlink of a directory is EISDIR on Linux, EPERM elsewhere: not
            # an object, so there is nothing to delete.
            if os.path.isdir(path) or not os.path.lexists(path):
                return
            raise
        directory = path.rpartition("/")[0]
        if self._fsync:
            try:
                _fsync_dir(directory)
            except FileNotFoundError:
                # A concurrent delete pruned the emptied folder first: with
                # the folder gone there is no entry left to make durable.
                pass
        self._prune(directory)

    def _prune(self, directory: str) -> None:
        # Empty folders left by deletes would slow listings forever. A put
        # racing with this either finds its cached folder gone (and retries)
        # or has its temp file inside, which makes rmdir fail.
        while len(directory) > len(self._root):
            try:
                os.rmdir(directory)
            except OSError:
                return
            self._ready_dirs.discard(directory)
            directory = directory.rpartition("/")[0]

    # -- reading -----------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key) from None

    def _stat(self, key: str) -> os.stat_result | None:
        try:
            st = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st if stat.S_ISREG(st.st_mode) else None

    def size(self, key: str) -> int:
        st = self._stat(key)
        if st is None:
            raise BlobNotFound(key)
        return st.st_size

    def exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def local_path(self, key: str) -> str:
        return self._path(key)

    def free_bytes(self) -> int:
        st = os.statvfs(self._root)
        return st.f_bavail * st.f_frsize

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        head, _, _ = prefix.rpartition("/")
        start = f"{self._root}/{head}" if head else self._root
        yield from self._walk(start, f"{head}/" if head else "", prefix)

    def _walk(self, directory: str, key_prefix: str, wanted: str) -> Iterator[str]:
        try:
            with os.scandir(directory) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in it]
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sorting "name/" for folders yields keys in plain byte order overall
        # ("a.x" < "a/b" because '.' < '/').
        entries.sort(key=lambda e: e[0] + "/" if e[1] else e[0])
        for name, is_dir, is_file in entries:
            if _SEGMENT_RE.fullmatch(name) is None or name in (".", ".."):
                continue  # temp files and anything a key cannot name
            key = key_prefix + name
            if is_dir:
                sub = key + "/"
                if sub.startswith(wanted) or wanted.startswith(sub):
                    yield from self._walk(f"{directory}/{name}", sub, wanted)
            elif is_file and key.startswith(wanted):
                yield key

    # -- maintenance -------------------------------------------------------

    def cleanup_temp_files(self, older_than_seconds: float = 3600.0) -> int:
        """Remove temp files of puts that never finished (a crash or a kill)
        and are older than ``older_than_seconds``, which must exceed the
        longest put in progress. Returns how many were removed."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self._root):
            for name in filenames:
                if not name.startswith(_TMP_PREFIX):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    if os.lstat(path).st_mtime <= cutoff:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed


class _SharedDirSync:
    """fsync of a folder shared by the puts that renamed into it meanwhile.

    Concurrent puts into one folder (several associations sending one
    series) each need the folder fsynced after their rename. An fsync that
    *starts* after a rename makes that rename durable, so a put whose rename
    happened before a running fsync began can rely on it. Each folder has a
    counter of renames asking for an fsync: a put takes a ticket after its
    rename; if an fsync covering its ticket has finished it is done, if one
    is running it waits for it and re-checks; otherwise it runs one itself,
    covering every ticket issued so far.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._dirs: dict[str, list[int]] = {}  # folder -> [tickets issued, tickets synced, fsync running]

    def sync(self, directory: str) -> None:
        with self._cond:
            state = self._dirs.get(directory)
            if state is None:
                state = self._dirs[directory] = [0, 0, 0]
            state[0] += 1
            ticket = state[0]
            while True:
                if state[1] >= ticket:
                    return
                if not state[2]:
                    state[2] = 1
                    covers = state[0]
                    break
                self._cond.wait()
        ok = False
        try:
            _fsync_dir(directory)
            ok = True
        finally:
            with self._cond:
                state[2] = 0
                if ok:
                    state[1] = max(state[1], covers)
                if state[0] == state[1] and self._dirs.get(directory) is state:
                    del self._dirs[directory]  # idle: forget the folder
                self._cond.notify_all()


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems (and platforms) refuse fsync on directories; the
        # rename is then as durable as the filesystem makes it.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _flat(view: memoryview) -> memoryview:
    """A byte view of any buffer (os.write counts items, not bytes)."""
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _write_buffer(fd: int, view: memoryview) -> None:
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _write_all(fd: int, data: BlobData, prefix: bytes) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        with memoryview(data) as view, _flat(view) as flat:
            total = len(prefix) + flat.nbytes
            if prefix:
                # One syscall for meta + dataset in the common case.
                written = os.writev(fd, [prefix, flat])
                if written < total:
                    with memoryview(prefix) as p, memoryview(flat) as f:
                        if written < len(prefix):
                            _write_buffer(fd, p[written:])
                            _write_buffer(fd, f)
                        else:
                            _write_buffer(fd, f[written - len(prefix) :])
            else:
                _write_buffer(fd, flat)
            return total
    total = 0
    if prefix:
        _write_buffer(fd, memoryview(prefix))
        total += len(prefix)
    readinto = getattr(data, "readinto", None)
    if readinto is not None:
        buf = bytearray(_COPY_CHUNK)
        with memoryview(buf) as view:
            while n := readinto(view):
                _write_buffer(fd, view[:n])
                total += n
        return total
    read = getattr(data, "read", None)
    chunks: Iterable[bytes] = iter(lambda: read(_COPY_CHUNK), b"") if read is not None else data
    for chunk in chunks:
        with memoryview(chunk) as view, _flat(view) as flat:
            _write_buffer(fd, flat)
            total += flat.nbytes
    return total
