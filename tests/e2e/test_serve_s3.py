"""`yingyun serve --blob-url s3://…`: every blob of the platform in the bucket (issue 12 item 20).

One real `yingyun serve` on the S3 emulator (moto's server, tests/support/s3.py).
A PACS stores by C-STORE (storescu), an archive comes in by `yingyun import`;
WADO-RS returns every instance byte for byte from the bucket, the patient's
viewer shows the images, and the local blob folder holds no instance. Small
instances, which on a local folder ride in the blob journal, take the plain
durable path on S3: nothing of theirs is ever journaled.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select

from yingyun.contract.signing import signed_headers
from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, make, uid
from ..support.net import free_port, wait_http, wait_pacs_known
from ..support.s3 import s3_client, use_emulator

YINGYUN = str(Path(sys.executable).parent / "yingyun")
TOKEN = "t" * 32
PREFIX = "films"


def dataset_bytes(path: Path) -> bytes:
    from yingyun.core.dicom import read_file_info

    raw = path.read_bytes()
    return raw[read_file_info(raw).dataset_offset:]


def run(*args: str) -> str:
    done = subprocess.run([YINGYUN, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture
def s3_env(monkeypatch, tmp_path):
    use_emulator(monkeypatch, tmp_path)
    for name in [k for k in os.environ if k.startswith("YINGYUN_")]:
        monkeypatch.delenv(name)


def test_serve_keeps_every_blob_in_the_bucket(tmp_path, s3_env):
    bucket = "yy-serve-" + os.urandom(4).hex()
    s3 = s3_client()
    s3.create_bucket(Bucket=bucket)
    data = tmp_path / "data"
    http_port, dicom_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    spec = StudySpec(accession="AS3", patient_id="PS3")
    series_uid = uid()
    # Small ones (the blob journal's size on a local folder) and one above it (fsynced there).
    sent = [make(tmp_path / "pacs" / f"{i}.dcm", spec, series_uid=series_uid, number=i + 1) for i in range(3)]
    sent.append(make(tmp_path / "pacs" / "big.dcm", spec, series_uid=series_uid, number=4, rows=320, cols=320))
    imported = make(tmp_path / "archive" / "old.dcm", spec, series_uid=uid(), number=1, series_number=2)

    log = tmp_path / "serve.log"
    with open(log, "w") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([YINGYUN, "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--http-port",
                                 str(http_port), "--dicom-port", str(dicom_port), "--dicom-workers", "1",
                                 "--public-url", url, "--blob-url", f"s3://{bucket}/{PREFIX}"],
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        wait_http(url)
        admin = ["--data-dir", str(data)]
        run("admin", "hospital", "add", "--id", "h1", "--name", "一院", *admin)
        run("admin", "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1", *admin)
        run("admin", "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1",
            *admin)
        bearer = re.search(r"token: (\S+)", run("admin", "token", "add", "--name", "ops", "--all-hospitals",
                                                 *admin)).group(1)
        wait_pacs_known(dicom_port, calling="PACS1")
        store = subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(dicom_port),
                                *map(str, sent)], capture_output=True, text=True, timeout=120)
        assert store.returncode == 0, store.stderr
        # The import takes the blob store the server recorded (no --blob-url given).
        assert orjson.loads(run("import", "--json", "--hospital", "h1", str(imported), *admin))["stored"] == 1

        engine = create_engine(f"sqlite:///{data / 'yingyun.db'}")
        try:
            with engine.connect() as c:
                rows = c.execute(select(s.instances)).all()
                journaled = c.execute(select(func.count()).select_from(s.blob_journal)).scalar()
        finally:
            engine.dispose()
        assert len(rows) == len(sent) + 1
        assert journaled == 0

        # WADO-RS: what the modality sent, from the bucket.
        by_sop = {str(make_sop(p)): p for p in [*sent, imported]}
        with httpx.Client(base_url=url + "/dicomweb", timeout=30,
                          headers={"Authorization": f"Bearer {bearer}"}) as dw:
            for r in rows:
                got = dw.get(f"/studies/{r.study_uid}/series/{r.series_uid}/instances/{r.sop_uid}",
                             headers={"Accept": "application/dicom"})
                assert got.status_code == 200, (got.status_code, got.text[:200])
                assert got.content == s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{r.blob_key}")["Body"].read()
                assert got.content.endswith(dataset_bytes(by_sop[r.sop_uid]))

        # The patient's viewer shows the images.
        study = {"patientId": "PS3", "patientName": "张三丰", "patientSex": "M", "studyId": "S3",
                 "accessNumber": "AS3", "modality": "CT", "studyUid": spec.study_uid, "phoneNum": "13800138000"}
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.post("/ris/study/add", content=orjson.dumps(study),
                          headers=signed_headers("ris1", TOKEN)).json()["code"] == 0
            qr = c.post("/ris/getStudyQR", content=orjson.dumps({"studyId": "S3"}),
                        headers=signed_headers("ris1", TOKEN)).json()["data"]["qrUrl"]
            base = qr[len(url):]
            landing = c.get(base)
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', landing.text).group(1)
            assert c.post(base + "/verify", data={"answer": "8000", "csrf": csrf}).status_code == 303
            viewer = c.get(base + "/viewer")
            assert viewer.status_code == 200
            first = re.search(r'data-testid="viewer-image" src="([^"]+)"', viewer.text).group(1)
            img = c.get(first.replace("&amp;", "&"))
            assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
            assert Image.open(io.BytesIO(img.content)).size[0] > 0

        # Nothing of any instance under the data dir's own blob folder.
        local = data / "blobs"
        assert not local.exists() or [p for p in local.rglob("*") if p.is_file()] == []
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(errors="replace")  # the stop included


def make_sop(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
