"""SIGKILL `yingyun serve` during a C-STORE storm; restart; re-send: exact counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydicom import dcmread
from sqlalchemy import create_engine, select, text

from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, make, uid
from ..support.net import free_port

YINGYUN = str(Path(sys.executable).parent / "yingyun")


def start(data_dir: Path, db_url: str, http: int, dicom: int) -> subprocess.Popen:
    with open(data_dir / f"serve-{time.time():.0f}.log", "w") as err:  # the child keeps its own copy
        proc = subprocess.Popen(
            [YINGYUN, "serve", "--data-dir", str(data_dir), "--database-url", db_url, "--host", "127.0.0.1",
             "--http-port", str(http), "--dicom-port", str(dicom), "--dicom-workers", "2"],
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    # the DICOM receivers are separate processes: wait until they answer C-ECHO
    while time.time() < deadline:
        echo = subprocess.run(["/usr/bin/echoscu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(dicom)],
                              capture_output=True, timeout=30)
        if echo.returncode == 0:
            return proc
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("server did not start")


def storm(port: int, folders: list[Path]) -> list[subprocess.Popen]:
    return [subprocess.Popen(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "YINGYUN", "+sd", "127.0.0.1", str(port),
                              str(f)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"TCP_NODELAY": "1"})
            for f in folders]


def test_sigkill_during_storm_then_resend(tmp_path, settings, runtime):
    runtime.tenancy.add_hospital(hospital_id="h1", name="H")
    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=104, hospital_id="h1")
    runtime.close()
    spec = StudySpec()
    folders = []
    expected = set()
    for q in range(4):
        series = uid()
        for i in range(250):
            f = make(tmp_path / "in" / f"q{q}" / f"{i}.dcm", spec, series_uid=series, number=i + 1, rows=64, cols=64)
            expected.add(dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        folders.append(tmp_path / "in" / f"q{q}")
    http, dicom = free_port(), free_port()
    proc = start(settings.data_dir, settings.database_url, http, dicom)
    engine = create_engine(settings.database_url)

    def stored() -> int:
        with engine.connect() as conn:
            return conn.execute(text("select count(*) from instances")).scalar()

    senders = storm(dicom, folders)
    deadline = time.time() + 60
    while stored() < 100 and time.time() < deadline:  # mid-storm, however fast the machine
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for p in senders:
        p.wait(timeout=60)
    before = stored()
    assert 0 < before < 1000, "the kill should land mid-storm"
    proc = start(settings.data_dir, settings.database_url, http, dicom)
    try:
        for p in storm(dicom, folders):
            assert p.wait(timeout=120) == 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    with engine.connect() as conn:
        rows = conn.execute(select(s.instances.c.sop_uid, s.instances.c.blob_key)).all()
        study = conn.execute(select(s.dicom_studies)).one()
        series = conn.execute(select(s.series.c.n_instances)).scalars().all()
    engine.dispose()
    assert {r.sop_uid for r in rows} == expected and len(rows) == 1000  # exact, no duplicates
    assert study.n_images == 1000 and study.n_series == 4 and sorted(series) == [250] * 4
    files = {str(p.relative_to(settings.blob_dir)) for p in settings.blob_dir.rglob("*") if p.is_file()}
    assert files == {r.blob_key for r in rows}  # no orphan files, no row without its file, no temp files
