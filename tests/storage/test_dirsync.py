"""LocalBlobStore's shared folder fsync: concurrent puts into one folder
share fsyncs, and no put returns before an fsync that began after its
rename has finished."""

from __future__ import annotations

import threading
import time

from yingyun.storage import blobs
from yingyun.storage.blobs import LocalBlobStore, _SharedDirSync


def test_concurrent_puts_share_folder_fsyncs(tmp_path, monkeypatch) -> None:
    calls: list[str] = []
    real = blobs._fsync_dir

    def slow_fsync(directory: str) -> None:
        calls.append(directory)
        time.sleep(0.02)  # long enough for the other puts to queue behind it
        real(directory)

    monkeypatch.setattr(blobs, "_fsync_dir", slow_fsync)
    store = LocalBlobStore(tmp_path / "s")
    store.put("a/b/warm", b"x")  # creates the folder (its own parent fsyncs)
    calls.clear()
    n = 16
    barrier = threading.Barrier(n)

    def put(i: int) -> None:
        barrier.wait()
        store.put(f"a/b/{i}", b"data %d" % i)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(n):
        with store.open(f"a/b/{i}") as f:
            assert f.read() == b"data %d" % i
    assert calls and set(calls) == {str(tmp_path / "s" / "a" / "b")}
    assert len(calls) < n, "concurrent puts into one folder should share fsyncs"


def test_a_sync_waits_for_an_fsync_that_started_after_its_ticket(monkeypatch) -> None:
    """A put arriving while an fsync runs must not return when that fsync
    ends (it began before the put's rename): it needs a second one."""
    events: list[str] = []
    started = threading.Event()
    release = threading.Event()

    def fake_fsync(directory: str) -> None:
        events.append("start")
        if len(events) == 1:
            started.set()
            release.wait(5)
        events.append("end")

    monkeypatch.setattr(blobs, "_fsync_dir", fake_fsync)
    sync = _SharedDirSync()
    first = threading.Thread(target=sync.sync, args=("/d",))
    first.start()
    assert started.wait(5)
    done = threading.Event()
    second = threading.Thread(target=lambda: (sync.sync("/d"), done.set()))
    second.start()
    time.sleep(0.05)
    assert not done.is_set()
    release.set()
    first.join(5)
    second.join(5)
    assert done.is_set()
    assert events == ["start", "end", "start", "end"]
    assert sync._dirs == {}  # idle folders are forgotten


def test_failed_fsync_raises_and_the_next_put_retries(tmp_path, monkeypatch) -> None:
    sync = _SharedDirSync()
    outcomes = iter([OSError(5, "EIO"), None])

    def flaky(directory: str) -> None:
        err = next(outcomes)
        if err is not None:
            raise err

    monkeypatch.setattr(blobs, "_fsync_dir", flaky)
    try:
        sync.sync("/d")
    except OSError:
        pass
    else:
        raise AssertionError("the fsync error must reach the put")
    sync.sync("/d")  # runs its own fsync, which succeeds
    assert sync._dirs == {}
