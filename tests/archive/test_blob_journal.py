"""Small instances' bytes ride in their index commit (storage/blobjournal.py):
journaled until the file is flushed, rewritten after a crash, kept when a
flush fails, and never journaled when large."""

from __future__ import annotations

import errno
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian

from yingyun.archive.instances import InstanceStore
from yingyun.dicomnet.status import Status
from yingyun.storage import blobjournal
from yingyun.storage.blobs import LocalBlobStore

from ..support.dicom_peers import dataset_bytes, make_instance


def _journal(runtime) -> list[tuple[str, bytes]]:
    with runtime.db.read() as conn:
        return [(k, bytes(d)) for k, d in conn.exec_driver_sql("SELECT blob_key, data FROM blob_journal ORDER BY pk")]


def _blob_keys(runtime) -> list[str]:
    with runtime.db.read() as conn:
        return [k for (k,) in conn.exec_driver_sql("SELECT blob_key FROM instances ORDER BY pk")]


def _open(runtime) -> InstanceStore:
    return InstanceStore(runtime.db, LocalBlobStore(runtime.settings.blob_dir))


def _send(store: InstanceStore, tmp_path: Path, n: int = 1, *, rows: int = 32) -> None:
    for i in range(n):
        path = tmp_path / f"in{i}-{rows}.dcm"
        make_instance(path, index=i, rows=rows, cols=rows)
        result = store.store(hospital_id="h1", data=dataset_bytes(path), transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == Status.SUCCESS, result


def test_small_instances_are_journaled_until_their_files_are_flushed(runtime, tenant, tmp_path) -> None:
    store = _open(runtime)
    assert store.journal is not None
    store.journal.flush_interval_s = 60  # hold the flush: what is journaled can be looked at
    _send(store, tmp_path, 3)
    keys = _blob_keys(runtime)
    journal = _journal(runtime)
    assert [k for k, _ in journal] == keys
    for key, data in journal:  # the whole file, meta included, byte for byte
        assert (runtime.settings.blob_dir / key).read_bytes() == data
    store.close()  # flushes now
    assert _journal(runtime) == []
    assert all((runtime.settings.blob_dir / k).stat().st_size > 1000 for k in keys)


def test_recover_rewrites_files_a_power_cut_tore(runtime, tenant, tmp_path, monkeypatch) -> None:
    store = _open(runtime)
    # The process "dies" before its flusher runs: the rows stay, the files are not durable.
    monkeypatch.setattr(store.journal, "written", lambda pk, key: None)
    _send(store, tmp_path, 3)
    keys = _blob_keys(runtime)
    expected = {k: (runtime.settings.blob_dir / k).read_bytes() for k in keys}
    (runtime.settings.blob_dir / keys[0]).write_bytes(expected[keys[0]][:100])  # torn
    (runtime.settings.blob_dir / keys[1]).unlink()  # its name never reached the disk
    (runtime.settings.blob_dir / keys[2]).write_bytes(b"")  # allocated, never written

    reopened = _open(runtime)  # recovery runs before anything is stored
    assert _journal(runtime) == []
    assert {k: (runtime.settings.blob_dir / k).read_bytes() for k in keys} == expected
    reopened.close()


def test_a_failed_flush_keeps_the_bytes_journaled(runtime, tenant, tmp_path, monkeypatch) -> None:
    store = _open(runtime)

    def broken(keys):
        list(keys)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store.journal.blobs, "sync_puts", broken)
    _send(store, tmp_path, 2)
    store.close()  # the flush fails: the rows must stay
    assert [k for k, _ in _journal(runtime)] == _blob_keys(runtime)
    _open(runtime).close()  # the next start writes them out
    assert _journal(runtime) == []


def test_large_instances_are_flushed_before_the_commit_not_journaled(runtime, tenant, tmp_path, monkeypatch) -> None:
    store = _open(runtime)
    calls: list[bool] = []  # durable at once?
    real_put, real_unsynced = store.blobs.put, store.blobs.put_unsynced
    monkeypatch.setattr(store.blobs, "put", lambda key, data, **kw: (calls.append(True), real_put(key, data, **kw))[1])
    monkeypatch.setattr(store.blobs, "put_unsynced",
                        lambda key, data, **kw: (calls.append(False), real_unsynced(key, data, **kw))[1])
    store.journal.flush_interval_s = 60
    _send(store, tmp_path, 1, rows=300)  # 180 KB of pixels > MAX_BYTES
    _send(store, tmp_path, 1, rows=32)
    assert calls == [True, False]
    assert len(_journal(runtime)) == 1
    store.close()


def test_forget_drops_the_rows_of_deleted_blobs(runtime, tenant, tmp_path) -> None:
    store = _open(runtime)
    store.journal.flush_interval_s = 60
    _send(store, tmp_path, 2)
    keys = _blob_keys(runtime)
    with runtime.db.write() as conn:
        blobjournal.forget(conn, keys[:1])
    assert [k for k, _ in _journal(runtime)] == keys[1:]
    store.close()


def test_only_a_durable_local_store_is_journaled(runtime) -> None:
    assert InstanceStore(runtime.db, LocalBlobStore(runtime.settings.blob_dir, fsync=False)).journal is None
