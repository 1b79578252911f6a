"""Tests for yingyun.storage.blobs.

The first part is a conformance suite: every test taking the ``store``
fixture runs against every BlobStore implementation in STORE_FACTORIES.
The local folder and S3 (against moto's server on loopback) are there; a
new store joins by adding a factory that returns it on a fresh root or
bucket, and must pass the same tests unchanged. The second part tests what
only the local folder has (its LocalFiles fast paths): temp files, fsync
ordering, crash leftovers, directory pruning, free space and file paths.
"""

from __future__ import annotations

import array
import io
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from yingyun.archive.layout import instance_key
from yingyun.storage import blobs
from yingyun.storage.blobs import BlobNotFound, BlobStore, InvalidKey, LocalBlobStore, LocalFiles, validate_key

from ..support.s3 import s3_store

STORE_FACTORIES: dict[str, Callable[[Path], BlobStore]] = {
    "local": lambda tmp: LocalBlobStore(tmp / "blobs"),
    # S3 protocol against an emulator on loopback (moto's server mode).
    "s3-emulator": lambda tmp: s3_store(),
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    yield STORE_FACTORIES[request.param](tmp_path)


def read(store: BlobStore, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


# --------------------------------------------------------------------------
# Conformance: every implementation


def test_is_a_blob_store(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_local_files_only_where_objects_are_files(request: pytest.FixtureRequest, store: BlobStore) -> None:
    assert isinstance(store, LocalFiles) == (request.node.callspec.params["store"] == "local")


def _chunks() -> Iterator[bytes]:
    yield b"abc"
    yield b""
    yield b"defg"


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: b"hello", b"hello"),
        (lambda: bytearray(b"hello"), b"hello"),
        (lambda: memoryview(b"xhellox")[1:-1], b"hello"),
        (lambda: memoryview(array.array("H", [1, 2])), array.array("H", [1, 2]).tobytes()),  # bytes, not items
        (lambda: _chunks(), b"abcdefg"),
        (lambda: [b"ab", bytearray(b"cd"), memoryview(b"ef")], b"abcdef"),
        (lambda: io.BytesIO(b"stream data"), b"stream data"),
        (lambda: b"", b""),
    ],
    ids=["bytes", "bytearray", "memoryview", "array", "generator", "list", "stream", "empty"],
)
@pytest.mark.parametrize("prefix", [b"", b"META"], ids=["no-prefix", "prefix"])
def test_put_and_read(store: BlobStore, make: Callable[[], object], expected: bytes, prefix: bytes) -> None:
    size = store.put("a/b/obj.dcm", make(), prefix=prefix)  # type: ignore[arg-type]
    assert size == len(prefix) + len(expected)
    assert read(store, "a/b/obj.dcm") == prefix + expected
    assert store.size("a/b/obj.dcm") == size
    assert store.exists("a/b/obj.dcm")


def test_stream_is_read_from_its_position(store: BlobStore, tmp_path: Path) -> None:
    path = tmp_path / "source"
    path.write_bytes(b"HEADER" + os.urandom(3 * 2**20 + 5))
    with open(path, "rb") as f:
        f.seek(6)
        size = store.put("k", f, prefix=b"P")
    assert size == 1 + 3 * 2**20 + 5
    assert read(store, "k") == b"P" + path.read_bytes()[6:]


def test_large_object(store: BlobStore) -> None:
    data = os.urandom(5 * 2**20 + 3)
    assert store.put("big", data, prefix=b"\0" * 132) == len(data) + 132
    assert read(store, "big") == b"\0" * 132 + data


def test_put_replaces_atomically(store: BlobStore) -> None:
    old, new = b"old" * 100_000, b"new" * 50_000
    store.put("x/y", old)
    with store.open("x/y") as reader:
        store.put("x/y", new)
        # A reader of the old object keeps the old bytes, never a mix.
        assert reader.read() == old
    assert read(store, "x/y") == new
    assert store.size("x/y") == len(new)
    assert list(store.iter_keys()) == ["x/y"]


def test_missing_keys(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.open("no/such/key")
    with pytest.raises(KeyError):  # BlobNotFound is a KeyError
        store.size("no/such/key")
    assert not store.exists("no/such/key")
    store.delete("no/such/key")  # idempotent on a missing key


def test_delete(store: BlobStore) -> None:
    store.put("d/1", b"one")
    store.put("d/2", b"two")
    store.delete("d/1")
    store.delete("d/1")
    assert not store.exists("d/1")
    assert read(store, "d/2") == b"two"
    assert list(store.iter_keys()) == ["d/2"]
    store.delete("d/2")
    assert list(store.iter_keys()) == []
    store.put("d/1", b"again")  # a pruned folder comes back
    assert read(store, "d/1") == b"again"


def test_failed_put_leaves_nothing(store: BlobStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial data"
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        store.put("f/obj", broken())
    assert not store.exists("f/obj")
    assert list(store.iter_keys()) == []
    store.put("f/obj", b"v1")
    with pytest.raises(RuntimeError):
        store.put("f/obj", broken())
    assert read(store, "f/obj") == b"v1"  # the old object survives a failed replace


INVALID_KEYS = [
    "",
    "/a",
    "a/",
    "a//b",
    ".",
    "..",
    "a/../b",
    "../../etc/passwd",
    "a/./b",
    "a b",
    "a\\b",
    "ü",
    "a\0b",
    "a\nb",
    ".tmp~1234",
    "a/b~",
    "C:",
    "a/*",
]


@pytest.mark.parametrize("key", INVALID_KEYS + [None, 12, b"a"])
def test_invalid_keys_are_refused(store: BlobStore, key: object) -> None:
    for call in (
        lambda: store.put(key, b"x"),  # type: ignore[arg-type]
        lambda: store.open(key),  # type: ignore[arg-type]
        lambda: store.size(key),  # type: ignore[arg-type]
        lambda: store.exists(key),  # type: ignore[arg-type]
        lambda: store.delete(key),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidKey):
            call()
    assert isinstance(InvalidKey("x"), ValueError)
    assert list(store.iter_keys()) == []


@pytest.mark.parametrize("key", ["a", "A.b-c_d", "..a", "a/.b", "1.2.840/3.dcm", "-", "a" * 200])
def test_valid_keys(store: BlobStore, key: str) -> None:
    assert validate_key(key) == key
    store.put(key, b"v")
    assert read(store, key) == b"v"
    assert list(store.iter_keys()) == [key]


def test_iter_keys(store: BlobStore) -> None:
    keys = ["a.x", "a/b", "a/c/d", "ab", "h/1/ab/k1", "h/1/abc/k2", "h/1/b/k3", "h/2/k4", "z"]
    for key in reversed(keys):
        store.put(key, key.encode())
    assert list(store.iter_keys()) == sorted(keys) == keys  # byte order: '.' < '/' < 'b'
    assert list(store.iter_keys("h/")) == ["h/1/ab/k1", "h/1/abc/k2", "h/1/b/k3", "h/2/k4"]
    assert list(store.iter_keys("h/1/ab")) == ["h/1/ab/k1", "h/1/abc/k2"]
    assert list(store.iter_keys("h/1/ab/")) == ["h/1/ab/k1"]
    assert list(store.iter_keys("a")) == ["a.x", "a/b", "a/c/d", "ab"]
    assert list(store.iter_keys("a/c/d")) == ["a/c/d"]
    assert list(store.iter_keys("nothing")) == []
    assert list(store.iter_keys("q/r/")) == []
    for bad in ["../", "/h", "h//", "h/../", "a b", "./"]:
        with pytest.raises(InvalidKey):
            list(store.iter_keys(bad))


def test_many_threads_putting(store: BlobStore) -> None:
    errors: list[BaseException] = []
    n_threads, per_thread = 8, 25

    def worker(t: int) -> None:
        try:
            for i in range(per_thread):
                # shared new folders on purpose: they are created concurrently
                key = f"c/{i % 5}/{t}/{i}" if i % 2 else f"c/{i % 5}/shared/{t}-{i}"
                store.put(key, f"{t}:{i}".encode() * 100, prefix=b"M")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    keys = list(store.iter_keys("c/"))
    assert len(keys) == len(set(keys)) == n_threads * per_thread
    for t in range(n_threads):
        for i in range(per_thread):
            key = f"c/{i % 5}/{t}/{i}" if i % 2 else f"c/{i % 5}/shared/{t}-{i}"
            assert read(store, key) == b"M" + f"{t}:{i}".encode() * 100


def test_threads_racing_on_one_key(store: BlobStore) -> None:
    candidates = [bytes([i]) * 200_000 for i in range(6)]
    threads = [threading.Thread(target=store.put, args=("race/k", data)) for data in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read(store, "race/k") in candidates  # one whole version, no mix
    assert list(store.iter_keys()) == ["race/k"]


def test_put_racing_delete_in_one_folder(store: BlobStore) -> None:
    # Deletes prune empty folders (local) while puts land in the same one.
    stop = threading.Event()
    errors: list[BaseException] = []

    def deleter() -> None:
        try:
            while not stop.is_set():
                for key in list(store.iter_keys("r/")):
                    store.delete(key)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=deleter)
    thread.start()
    try:
        for i in range(150):
            store.put(f"r/s/{i}", b"x")
    finally:
        stop.set()
        thread.join()
    assert errors == []
    store.put("r/s/final", b"done")
    assert read(store, "r/s/final") == b"done"


# --------------------------------------------------------------------------
# Local folder specifics


@pytest.fixture
def local(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_layout_and_permissions(local: LocalBlobStore) -> None:
    local.put("a/b/c.dcm", b"data")
    path = Path(local.root) / "a" / "b" / "c.dcm"
    assert local.local_path("a/b/c.dcm") == str(path)
    assert path.read_bytes() == b"data"
    assert path.stat().st_mode & 0o007 == 0  # PHI: nothing for "other"
    assert sorted(os.listdir(path.parent)) == ["c.dcm"]  # no temp file left
    assert local.free_bytes() == pytest.approx(shutil.disk_usage(local.root).free, abs=256 * 2**20)


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_local_path_refuses_invalid_keys(local: LocalBlobStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        local.local_path(key)


def test_a_folder_store_never_loads_the_s3_module(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        import yingyun.runtime, yingyun.serve
        from yingyun.storage.factory import open_blob_store
        store = open_blob_store({str(tmp_path / "b")!r})
        assert type(store).__name__ == "LocalBlobStore" and open_blob_store("file://" + store.root).root == store.root
        print(sorted(m for m in sys.modules if m.endswith("blobs_s3") or m.split(".")[0] in ("boto3", "botocore")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_s3_url_opens_an_s3_store() -> None:
    from yingyun.storage.blobs_s3 import S3BlobStore
    from yingyun.storage.factory import open_blob_store

    store = open_blob_store("s3://bucket/site-a")
    assert isinstance(store, S3BlobStore) and (store.bucket, store.prefix) == ("bucket", "site-a")


def test_temp_files_are_invisible(local: LocalBlobStore) -> None:
    local.put("s/real", b"r")
    leftover = Path(local.root) / "s" / ".tmp~deadbeefdeadbeef"
    leftover.write_bytes(b"half of an object")
    assert list(local.iter_keys()) == ["s/real"]
    with pytest.raises(InvalidKey):
        local.open("s/.tmp~deadbeefdeadbeef")
    (Path(local.root) / "lost+found").mkdir()  # foreign names are skipped too
    assert list(local.iter_keys()) == ["s/real"]


def test_crash_during_put_leaves_only_a_temp_file(local: LocalBlobStore) -> None:
    # A real process dies (os._exit: no cleanup, no finally) mid-put.
    script = textwrap.dedent(
        """
        import os, sys
        from yingyun.storage.blobs import LocalBlobStore

        def dying():
            yield b"first half of the object"
            os._exit(0)

        LocalBlobStore(sys.argv[1]).put("h/x/crashed.dcm", dying(), prefix=b"META")
        """
    )
    subprocess.run([sys.executable, "-c", script, local.root], check=True, timeout=60)
    assert not local.exists("h/x/crashed.dcm")
    assert list(local.iter_keys()) == []
    with pytest.raises(BlobNotFound):
        local.open("h/x/crashed.dcm")
    temps = list(Path(local.root).rglob(".tmp~*"))
    assert len(temps) == 1 and temps[0].read_bytes() == b"METAfirst half of the object"
    assert local.cleanup_temp_files(older_than_seconds=3600) == 0  # might be a put in progress
    old = time.time() - 7200
    os.utime(temps[0], (old, old))
    assert local.cleanup_temp_files(older_than_seconds=3600) == 1
    assert list(Path(local.root).rglob(".tmp~*")) == []
    local.put("h/x/crashed.dcm", b"retried")
    assert read(local, "h/x/crashed.dcm") == b"retried"


def test_fsync_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalBlobStore(tmp_path / "blobs")
    local.put("warm/x", b"x")
    events: list[tuple[str, str]] = []
    real_sync, real_fsync, real_replace = blobs._sync_data, os.fsync, os.replace

    def sync_data(fd: int) -> None:
        events.append(("sync-file", os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1][:5]))
        real_sync(fd)

    def fsync(fd: int) -> None:
        events.append(("sync-dir", os.readlink(f"/proc/self/fd/{fd}")[len(local.root) :] or "/"))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("rename", dst[len(local.root) :]))
        real_replace(src, dst)

    monkeypatch.setattr(blobs, "_sync_data", sync_data)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    local.put("warm/y", b"y")  # folder known: file sync, rename, folder sync
    assert events == [("sync-file", ".tmp~"), ("rename", "/warm/y"), ("sync-dir", "/warm")]
    events.clear()
    local.put("n1/n2/z", b"z")  # two new folders: each one's parent is synced first
    assert events == [
        ("sync-dir", "/"),
        ("sync-dir", "/n1"),
        ("sync-file", ".tmp~"),
        ("rename", "/n1/n2/z"),
        ("sync-dir", "/n1/n2"),
    ]
    events.clear()
    LocalBlobStore(tmp_path / "blobs").put("n1/n2/w", b"w")  # a new process re-syncs folders it did not make
    assert events[:2] == [("sync-dir", "/"), ("sync-dir", "/n1")]
    events.clear()
    LocalBlobStore(tmp_path / "nosync", fsync=False).put("a/b", b"b")
    assert [e for e in events if e[0] != "rename"] == []


def test_deferred_puts_are_flushed_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalBlobStore(tmp_path / "blobs")
    local.put("f/warm", b"w")
    events: list[str] = []
    real_sync, real_fsync, real_syncfs = blobs._sync_data, os.fsync, blobs._syncfs
    monkeypatch.setattr(blobs, "_sync_data", lambda fd: (events.append("sync-file"), real_sync(fd))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("sync-dir"), real_fsync(fd))[1])
    assert real_syncfs is not None  # Linux: one syncfs for the batch
    monkeypatch.setattr(blobs, "_syncfs", lambda fd: (events.append("syncfs"), real_syncfs(fd))[1])

    local.put_unsynced("f/a", b"a")
    local.put_unsynced("f/b", b"b", prefix=b"META")
    assert events == []  # visible at once, nothing flushed
    assert read(local, "f/a") == b"a" and read(local, "f/b") == b"METAb"
    local.sync_puts(["f/a", "f/b"])
    assert events == ["syncfs"]

    # Without syncfs (other systems): each file, then each folder once; deleted keys are skipped.
    monkeypatch.setattr(blobs, "_syncfs", None)
    events.clear()
    local.put_unsynced("f/c", b"c")
    local.put_unsynced("g/d", b"d")
    local.put_unsynced("f/gone", b"x")
    local.delete("f/gone")
    events.clear()
    local.sync_puts(["f/c", "g/d", "f/gone"])
    assert events == ["sync-file", "sync-file", "sync-dir", "sync-dir"]


def test_known_folders_cost_no_syscalls(local: LocalBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    local.put("f/g/1", b"1")
    calls: list[str] = []
    for name in ("mkdir", "stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name), _real(*a, **k))[1])
    local.put("f/g/2", b"2")
    assert calls == []


def test_key_that_is_a_folder_prefix(local: LocalBlobStore) -> None:
    local.put("k/a", b"file")
    with pytest.raises(InvalidKey):
        local.put("k/a/b", b"below a file")
    local.put("m/a/b", b"x")
    with pytest.raises(InvalidKey):
        local.put("m/a", b"over a folder")
    assert not local.exists("m/a")
    with pytest.raises(BlobNotFound):
        local.open("m/a")
    with pytest.raises(BlobNotFound):
        local.size("m/a")
    local.delete("m/a")  # a folder is not an object: nothing to delete
    assert read(local, "m/a/b") == b"x"
    assert list(Path(local.root).rglob(".tmp~*")) == []


def test_delete_prunes_empty_folders_but_not_root(local: LocalBlobStore) -> None:
    local.put("p/q/r/1", b"1")
    local.put("p/2", b"2")
    local.delete("p/q/r/1")
    assert sorted(os.listdir(Path(local.root) / "p")) == ["2"]
    local.delete("p/2")
    assert os.listdir(local.root) == []
    assert os.path.isdir(local.root)


def test_root_is_created(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "store"
    LocalBlobStore(root).put("a", b"1")
    assert (root / "a").read_bytes() == b"1"
    LocalBlobStore(str(root)).put("b", b"2")  # str or PathLike, existing root
    assert sorted(os.listdir(root)) == ["a", "b"]


# --------------------------------------------------------------------------
# The archive's key layout (archive/layout.py) in every store

STUDY = "1.2.826.0.1.3680043.8.498.10"
SERIES = "1.2.826.0.1.3680043.8.498.10.1"
SOP = "1.2.826.0.1.3680043.8.498.10.1.1"


def test_instance_keys_store_and_list(store: BlobStore) -> None:
    keys = [instance_key("h1", STUDY, SERIES, f"{SOP}.{i}") for i in range(1, 4)]
    keys.append(instance_key("h1", STUDY, SERIES, f"{SOP}.1", 1))
    for key in keys:
        store.put(key, key.encode())
    study_prefix = keys[0].rsplit("/", 2)[0] + "/"
    assert list(store.iter_keys(study_prefix)) == sorted(keys)
