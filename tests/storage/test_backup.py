"""`yingyun backup` / `backup verify` / `restore` (issue 18 item 3).

The load test runs a real `yingyun serve`, a C-STORE storm (storescu) and RIS
traffic while `yingyun backup` runs; the backup is restored into a new data
dir, a server is started on it, and everything acknowledged before the backup
began is there, byte for byte. The smaller tests work on a runtime directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import create_engine, select

from yingyun.contract.signing import signed_headers
from yingyun.core.crypto import KEY_FILE_NAME
from yingyun.dicomnet.status import Status
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage import backup as store
from yingyun.storage import schema as s
from yingyun.storage.db import default_sqlite_url

from ..support.dicom_data import StudySpec, make, uid
from ..support.dicom_peers import dataset_bytes, make_instance
from ..support.net import wait_pacs_known
from ..support.servers import ServeProcess

YINGYUN = str(Path(sys.executable).parent / "yingyun")
TOKEN = "t" * 32


@pytest.fixture
def sqlite_runtime(tmp_path):
    """A runtime on SQLite only: what a restore makes a data dir from."""
    data = tmp_path / "sqlite-data"
    rt = Runtime.open(Settings(data_dir=data, database_url=default_sqlite_url(data)), create_keys=True, migrate=True)
    rt.tenancy.add_hospital(hospital_id="h1", name="第一医院")
    yield rt
    rt.close()


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([YINGYUN, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _store(runtime, tmp_path: Path, n: int, *, start: int = 0) -> list[Path]:
    sops = []
    for i in range(start, start + n):
        path = tmp_path / f"i{i}.dcm"
        make_instance(path, index=i)
        result = runtime.instances.store(hospital_id="h1", data=dataset_bytes(path),
                                         transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == Status.SUCCESS, result
        sops.append(path)
    return sops


def test_backup_under_load_restores_everything_acknowledged(tmp_path) -> None:
    data = tmp_path / "data"
    server = ServeProcess(data)
    dicom_port = int(server.args[server.args.index("--dicom-port") + 1])
    stop = threading.Event()
    acked_files: list[Path] = []  # instances whose storescu run ended in success
    acked_studies: list[str] = []  # studyIds the RIS API answered code 0
    failures: list[str] = []

    def storm() -> None:
        n = 0
        while not stop.is_set():
            spec = StudySpec(accession=f"A{n}", patient_id=f"P{n}")
            series = uid()
            batch = [make(tmp_path / "pacs" / f"{n}-{i}.dcm", spec, series_uid=series, number=i + 1,
                          rows=64 if i % 2 else 16, cols=64 if i % 2 else 16) for i in range(4)]
            done = subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1",
                                   str(dicom_port), *map(str, batch)], capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                failures.append(done.stderr)
                return
            acked_files.extend(batch)
            n += 1

    def ris() -> None:
        import httpx

        with httpx.Client(base_url=server.url, timeout=30) as c:
            n = 0
            while not stop.is_set():
                body = {"patientId": f"R{n}", "patientName": "张三", "patientSex": "M", "studyId": f"S{n}",
                        "accessNumber": f"RA{n}", "modality": "CT", "phoneNum": "13800138000"}
                answer = c.post("/ris/study/add", content=orjson.dumps(body),
                                headers={"Content-Type": "application/json", **signed_headers("ris1", TOKEN)}).json()
                if answer["code"] != 0:
                    failures.append(str(answer))
                    return
                acked_studies.append(f"S{n}")
                n += 1

    with server:
        admin = ["--data-dir", str(data)]
        run("admin", "hospital", "add", "--id", "h1", "--name", "一院", *admin)
        run("admin", "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1", *admin)
        run("admin", "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104",
            "--hospital", "h1", *admin)
        wait_pacs_known(dicom_port, calling="PACS1")
        threads = [threading.Thread(target=storm), threading.Thread(target=ris)]
        for t in threads:
            t.start()
        try:
            while len(acked_files) < 40 and not failures:
                stop.wait(0.1)
            before_files, before_studies = list(acked_files), list(acked_studies)
            done = run("backup", "--to", str(tmp_path / "backup"), "--include-keys", "--json", *admin)
            during = len(acked_files)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
        assert not failures, failures
        assert during > len(before_files), "the storm went on while the backup ran"
    first = json.loads(done.stdout)
    assert first["keysIncluded"] and first["copied"] >= len(before_files)

    verified = json.loads(run("backup", "verify", str(tmp_path / "backup"), "--json").stdout)
    assert verified["ok"] and verified["checked"] == first["files"]
    restored = tmp_path / "restored"
    run("restore", "--from", str(tmp_path / "backup"), "--data-dir", str(restored))
    with ServeProcess(restored):
        pass  # it starts on the restored data dir (keys match, schema at head, journal replayed)

    engine = create_engine(f"sqlite:///{restored / 'yingyun.db'}")
    try:
        with engine.connect() as c:
            rows = {r.sop_uid: r for r in c.execute(select(s.instances))}
            studies = set(c.execute(select(s.studies.c.study_id)).scalars())
    finally:
        engine.dispose()
    from pydicom import dcmread

    for path in before_files:
        sop = dcmread(path, stop_before_pixels=True).SOPInstanceUID
        assert sop in rows, f"{path.name} was acknowledged before the backup and is missing"
        assert (restored / "blobs" / rows[sop].blob_key).read_bytes().endswith(dataset_bytes(path))
    assert set(before_studies) <= studies


def test_second_backup_copies_only_what_is_new(runtime, tenant, tmp_path) -> None:
    _store(runtime, tmp_path, 5)
    to = tmp_path / "backup"
    first = store.backup(runtime.db, runtime.blobs, to)
    assert first.copied == 5
    _store(runtime, tmp_path, 2, start=5)
    second = store.backup(runtime.db, runtime.blobs, to)
    assert second.copied == 2
    assert store.verify(to).ok
    assert not (to / store.KEYS).exists()


def test_a_blob_the_store_no_longer_has_leaves_the_backup(runtime, tenant, tmp_path) -> None:
    _store(runtime, tmp_path, 3)
    to = tmp_path / "backup"
    store.backup(runtime.db, runtime.blobs, to)
    key = next(iter(runtime.blobs.iter_keys()))
    runtime.blobs.delete(key)
    again = store.backup(runtime.db, runtime.blobs, to)
    assert again.removed == 1 and not (to / "blobs" / key).exists()
    assert "blobs/" + key not in store.read_manifest(to)["files"]


def test_verify_names_corrupt_and_missing_files(runtime, tenant, tmp_path) -> None:
    _store(runtime, tmp_path, 3)
    to = tmp_path / "backup"
    store.backup(runtime.db, runtime.blobs, to)
    blobs = sorted(p for p in (to / "blobs").rglob("*.dcm"))
    damaged = bytearray(blobs[0].read_bytes())
    damaged[-1] ^= 0xFF
    blobs[0].write_bytes(bytes(damaged))
    blobs[1].unlink()
    result = store.verify(to)
    assert result.corrupt == ["blobs/" + str(blobs[0].relative_to(to / "blobs"))]
    assert result.missing == ["blobs/" + str(blobs[1].relative_to(to / "blobs"))]
    cli = run("backup", "verify", str(to), check=False)
    assert cli.returncode == 1 and "corrupt: blobs/" in cli.stdout and "missing: blobs/" in cli.stdout


def test_restore_refuses_a_damaged_backup_and_writes_nothing(sqlite_runtime, tmp_path) -> None:
    runtime = sqlite_runtime
    _store(runtime, tmp_path, 2)
    to = tmp_path / "backup"
    store.backup(runtime.db, runtime.blobs, to)
    next((to / "blobs").rglob("*.dcm")).write_bytes(b"not what was received")
    done = run("restore", "--from", str(to), "--data-dir", str(tmp_path / "new"), check=False)
    assert done.returncode == 1 and "1 corrupt" in done.stderr and "nothing was restored" in done.stderr
    assert not (tmp_path / "new").exists()


def test_a_postgresql_index_is_dumped_and_restored_with_pg_restore(runtime, tenant, tmp_path, database_url) -> None:
    if runtime.db.is_sqlite:
        assert store.INDEX_SQLITE in store.read_manifest(store.backup(runtime.db, runtime.blobs, tmp_path / "b")
                                                         .folder)["files"]
        return
    to = tmp_path / "backup"
    result = store.backup(runtime.db, runtime.blobs, to)
    assert (to / store.INDEX_PG).stat().st_size > 0 and result.files >= 1
    listed = subprocess.run(["pg_restore", "--list", str(to / store.INDEX_PG)], capture_output=True, text=True)
    assert listed.returncode == 0 and "TABLE public instances" in listed.stdout
    done = run("restore", "--from", str(to), "--data-dir", str(tmp_path / "new"), check=False)
    assert done.returncode == 1 and "pg_restore" in done.stderr


def test_restore_refuses_a_data_dir_in_use(sqlite_runtime, tmp_path) -> None:
    runtime = sqlite_runtime
    to = tmp_path / "backup"
    store.backup(runtime.db, runtime.blobs, to)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "yingyun.db").write_bytes(b"someone's")
    done = run("restore", "--from", str(to), "--data-dir", str(taken), check=False)
    assert done.returncode == 1 and "not empty" in done.stderr
    assert (taken / "yingyun.db").read_bytes() == b"someone's"


def test_backup_without_keys_says_where_they_must_be(sqlite_runtime, tmp_path) -> None:
    runtime = sqlite_runtime
    runtime.close()
    done = run("backup", "--to", str(tmp_path / "b"), "--data-dir", str(runtime.settings.data_dir))
    assert "the keys are not in this backup" in done.stderr
    assert not (tmp_path / "b" / store.KEYS).exists()
    done = run("backup", "--to", str(tmp_path / "b"), "--include-keys", "--data-dir", str(runtime.settings.data_dir))
    assert (tmp_path / "b" / store.KEYS).read_bytes() == (runtime.settings.data_dir / KEY_FILE_NAME).read_bytes()
