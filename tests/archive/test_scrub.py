"""The scrub and `yingyun admin verify` (issue 18 item 5): planted damage is found, and repaired where a copy is."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import select

from yingyun.archive.scrub import BackupCopies, Scrubber, ScrubWorker, Throttle, damaged_instances, scrub_figures
from yingyun.dicomnet.status import Status
from yingyun.storage import backup
from yingyun.storage.schema import blob_digests, instances, scrub_state

from ..support.dicom_peers import dataset_bytes, make_instance

YINGYUN = str(Path(sys.executable).parent / "yingyun")


def _store(runtime, tmp_path: Path, n: int) -> list[str]:
    for i in range(n):
        path = tmp_path / f"i{i}.dcm"
        make_instance(path, index=i)
        result = runtime.instances.store(hospital_id="h1", data=dataset_bytes(path),
                                         transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == Status.SUCCESS, result
    with runtime.db.read() as conn:
        return list(conn.execute(select(instances.c.blob_key).order_by(instances.c.pk)).scalars())


def _flip_a_byte(runtime, key: str) -> None:
    path = Path(runtime.blobs.local_path(key))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _scrub_state(runtime):
    with runtime.db.read() as conn:
        return conn.execute(select(scrub_state)).one()


def _read(runtime, key: str) -> bytes:
    with runtime.blobs.open(key) as f:
        return f.read()


def _admin_verify(runtime, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([YINGYUN, "admin", "--data-dir", str(runtime.settings.data_dir), "--database-url",
                           runtime.settings.database_url, "verify", "--json", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_corrupt_byte_and_a_deleted_file_are_found(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 4)
    first = Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all()
    assert first.checked == 4 and first.findings == []  # the first reading records the digests
    _flip_a_byte(runtime, keys[1])
    runtime.blobs.delete(keys[2])
    done = _admin_verify(runtime)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["checked"] == 4
    assert [f["blobKey"] for f in report["corrupt"]] == [keys[1]]
    assert [f["blobKey"] for f in report["missing"]] == [keys[2]]
    assert all(not f["repaired"] for f in report["corrupt"] + report["missing"])
    with runtime.db.read() as conn:
        states = dict(conn.execute(select(blob_digests.c.blob_key, blob_digests.c.state)).all())
        figures = scrub_figures(conn)
    assert states == {keys[0]: "ok", keys[1]: "corrupt", keys[2]: "missing", keys[3]: "ok"}
    assert figures["scrub_damaged_objects"] == 2


def test_damage_is_repaired_from_a_backup(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 3)
    good = {k: _read(runtime, k) for k in keys}
    Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all()
    backup.backup(runtime.db, runtime.blobs, tmp_path / "backup")
    _flip_a_byte(runtime, keys[0])
    runtime.blobs.delete(keys[1])
    done = _admin_verify(runtime, "--repair-from", str(tmp_path / "backup"))
    assert done.returncode == 0, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert [(f["blobKey"], f["repaired"]) for f in report["corrupt"]] == [(keys[0], True)]
    assert [(f["blobKey"], f["repaired"]) for f in report["missing"]] == [(keys[1], True)]
    assert {k: _read(runtime, k) for k in keys} == good
    assert Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all().findings == []


def test_a_copy_that_is_not_what_was_received_repairs_nothing(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 1)
    Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all()
    backup.backup(runtime.db, runtime.blobs, tmp_path / "backup")
    _flip_a_byte(runtime, keys[0])
    copy = tmp_path / "backup" / "blobs" / keys[0]
    copy.write_bytes(b"x" * copy.stat().st_size)
    report = Scrubber(runtime.db, runtime.blobs, rate_bytes=0, repair=BackupCopies(tmp_path / "backup")).check_all()
    assert [(f.problem, f.repaired) for f in report.findings] == [("corrupt", False)]


def test_a_truncated_object_is_found_at_its_first_reading(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 2)
    path = Path(runtime.blobs.local_path(keys[0]))
    path.write_bytes(path.read_bytes()[:-10])
    report = Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all()
    assert [(f.key, f.problem) for f in report.findings] == [(keys[0], "corrupt")]


def test_verify_since_reads_only_what_came_after(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 3)
    with runtime.db.write() as conn:
        conn.execute(instances.update().where(instances.c.blob_key != keys[2]).values(received_at=1_000_000_000.0))
    report = Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all(since=time.time() - 3600)
    assert report.checked == 1


def test_the_background_pass_keeps_its_progress(runtime, tenant, tmp_path) -> None:
    _store(runtime, tmp_path, 5)
    scrubber = Scrubber(runtime.db, runtime.blobs, rate_bytes=0, batch=2)
    assert scrubber.step() == 0.0
    partway = _scrub_state(runtime)
    assert partway.checked == 2 and partway.passes == 0 and partway.pass_started_at is not None
    with runtime.db.read() as conn:
        figures = scrub_figures(conn)
    assert figures["scrub_checked_objects"] == 2 and figures["scrub_pass_progress"] == 0.4
    assert figures["backup_last_success_timestamp"] == 0
    steps = 1
    while scrubber.step() is not None:
        steps += 1
    assert steps == 3
    done = _scrub_state(runtime)
    assert done.passes == 1 and done.last_pass_at > 0 and done.errors == 0
    assert done.checked == 0 and done.last_pk == 0  # a new pass starts from the beginning
    # The worker rests for the interval after a pass instead of starting another.
    assert 0 < ScrubWorker(scrubber, interval_s=3600)._step() <= ScrubWorker.IDLE_S


def test_a_gateway_does_not_count_what_its_spool_purge_freed(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 2)
    with runtime.db.write() as conn:
        conn.execute(instances.update().where(instances.c.blob_key == keys[0]).values(received_at=1_000_000_000.0))
    runtime.blobs.delete(keys[0])  # forwarded and freed long ago
    runtime.blobs.delete(keys[1])  # freshly received: damage
    report = Scrubber(runtime.db, runtime.blobs, rate_bytes=0,
                      spooled_before=lambda: time.time() - 7 * 86400).check_all()
    assert [(f.key, f.problem) for f in report.findings] == [(keys[1], "missing")]


def test_the_throttle_holds_its_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    throttle = Throttle(5e6, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        throttle.took(1_000_000)
        now[0] += 0.01  # reading a MB takes 10 ms here: the throttle makes up the rest
    assert abs(now[0] - 2.0) < 0.02  # 10 MB at 5 MB/s
    assert Throttle(0, sleep=sleep).took(10**9) is None and len(slept) == 10


def test_the_digest_is_recorded_at_ingest_so_damage_before_the_first_reading_is_found(runtime, tenant,
                                                                                       tmp_path) -> None:
    import hashlib

    from yingyun.archive.part10 import IN_MEMORY_BYTES, store_part10

    keys = _store(runtime, tmp_path, 2)  # C-STORE's path: the dataset as bytes
    big = tmp_path / "big.dcm"
    make_instance(big, index=9, rows=1024, cols=1024)
    assert big.stat().st_size > IN_MEMORY_BYTES  # so the Part-10 file is stored as a stream
    with open(big, "rb") as f:
        assert store_part10(runtime.instances, hospital_id="h1", data=f).status == Status.SUCCESS
    with runtime.db.read() as conn:
        keys = list(conn.execute(select(instances.c.blob_key).order_by(instances.c.pk)).scalars())
        recorded = dict(conn.execute(select(blob_digests.c.blob_key, blob_digests.c.sha256)).all())
    assert recorded == {k: hashlib.sha256(_read(runtime, k)).hexdigest() for k in keys}
    _flip_a_byte(runtime, keys[0])
    _flip_a_byte(runtime, keys[2])
    report = Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all()  # its first reading
    assert sorted((f.key, f.problem) for f in report.findings) == sorted([(keys[0], "corrupt"), (keys[2], "corrupt")])


def test_the_same_instance_received_again_mends_a_damaged_object_under_its_key(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 3)
    good = {k: _read(runtime, k) for k in keys}
    _flip_a_byte(runtime, keys[0])
    runtime.blobs.delete(keys[1])
    assert len(Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all().findings) == 2
    with runtime.db.read() as conn:
        assert set(damaged_instances(conn, hospital_id="h1", limit=10)) == {  # one reading: checked_at may tie
            conn.execute(select(instances.c.sop_uid).where(instances.c.blob_key == k)).scalar() for k in keys[:2]}
        assert damaged_instances(conn, hospital_id="h2", limit=10) == []
    outcomes = [runtime.instances.store(hospital_id="h1", data=dataset_bytes(tmp_path / f"i{i}.dcm"),
                                        transfer_syntax_uid=ExplicitVRLittleEndian).outcome for i in range(3)]
    assert outcomes == ["repaired", "repaired", "duplicate"]
    assert {k: _read(runtime, k) for k in keys} == good
    with runtime.db.read() as conn:
        rows = conn.execute(select(instances.c.blob_key, instances.c.version).order_by(instances.c.pk)).all()
        assert damaged_instances(conn, hospital_id="h1", limit=10) == []
    assert [tuple(r) for r in rows] == [(k, 1) for k in keys]  # no new versions
    assert Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all().findings == []


def test_a_different_instance_under_a_damaged_key_is_a_new_version_not_a_repair(runtime, tenant, tmp_path) -> None:
    keys = _store(runtime, tmp_path, 1)
    _flip_a_byte(runtime, keys[0])
    Scrubber(runtime.db, runtime.blobs, rate_bytes=0).check_all()
    changed = bytearray(dataset_bytes(tmp_path / "i0.dcm"))
    changed[-1] ^= 0x01  # a pixel of the same SOP instance changed
    result = runtime.instances.store(hospital_id="h1", data=bytes(changed), transfer_syntax_uid=ExplicitVRLittleEndian)
    assert result.outcome == "replaced"
