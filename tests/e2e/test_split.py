"""A gateway and a cloud as two real processes over loopback (issue [4/6]).

The cloud is killed during steady RIS traffic and a C-STORE storm, the
gateway is SIGKILLed mid-forward; after restarts every study, report,
delete and instance is in the cloud exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, func, select

from yingyun.contract.signing import signed_headers
from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, make_study
from ..support.net import free_port, wait_dicom, wait_http

YINGYUN = str(Path(sys.executable).parent / "yingyun")
KEY = "k" * 40
TOKEN = "t" * 32


def admin(data_dir: Path, *args: str) -> str:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data_dir)], check=True, capture_output=True,
                          text=True, timeout=60).stdout


class Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.args, self.log = args, log
        self.p: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self.p = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"), start_new_session=True)
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        os.killpg(self.p.pid, sig)
        self.p.wait(timeout=30)


def ris(url: str, path: str, body: dict) -> dict:
    r = httpx.post(url + path, content=orjson.dumps(body), headers=signed_headers("ris1", TOKEN), timeout=30)
    return r.json()


def study(study_id: str, uid: str) -> dict:
    return {"patientId": "P" + study_id, "patientName": "张三丰", "patientSex": "M", "studyId": study_id,
            "accessNumber": "A" + study_id, "modality": "CT", "studyUid": uid, "phoneNum": "13800138000"}


def storescu(port: int, files) -> int:
    return subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, timeout=120, env={"TCP_NODELAY": "1"}).returncode


def sync_status(gw_dir: Path) -> dict:
    return json.loads(admin(gw_dir, "sync", "--json"))


def until(fn, timeout: float = 90.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_gateway_and_cloud_survive_outages(tmp_path):
    cloud_dir, gw_dir = tmp_path / "cloud", tmp_path / "gateway"
    admin(cloud_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    assert "added" in admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
    admin(gw_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(gw_dir, "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
    admin(gw_dir, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")

    cloud_port, gw_port, dicom_port = free_port(), free_port(), free_port()
    cloud_url, gw_url = f"http://127.0.0.1:{cloud_port}", f"http://127.0.0.1:{gw_port}"
    cloud = Proc([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1", "--http-port", str(cloud_port),
                  "--stable-seconds", "1"], tmp_path / "cloud.log").start()
    gateway = Proc([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port", str(gw_port),
                    "--dicom-port", str(dicom_port), "--cloud-url", cloud_url, "--gateway-id", "gw1", "--gateway-key", KEY,
                    "--public-url", "https://film.example.test", "--dicom-workers", "1"], tmp_path / "gw.log").start()
    wait_http(cloud_url)
    wait_http(gw_url)
    wait_dicom(dicom_port, calling="PACS1")
    engine = create_engine(f"sqlite:///{cloud_dir / 'yingyun.db'}")

    def cloud_count(table) -> int:
        with engine.connect() as c:
            return c.execute(select(func.count()).select_from(table)).scalar()

    try:
        s1, s2, s3 = StudySpec(accession="AS1"), StudySpec(accession="AS2"), StudySpec(accession="AS3")
        assert ris(gw_url, "/ris/study/add", study("S1", s1.study_uid))["code"] == 0
        assert ris(gw_url, "/ris/report/add", {"reportNumber": "R1", "studyId": "S1", "accessNumber": "AS1",
                                               "imageDescription": "所见", "conclusion": "结论"})["code"] == 0
        qr = ris(gw_url, "/ris/getStudyQR", {"studyId": "S1"})["data"]["qrUrl"]
        assert qr.startswith("https://film.example.test/h5/s/")
        assert storescu(dicom_port, make_study(tmp_path / "d1", s1, series=2, per_series=5)) == 0
        until(lambda: cloud_count(s.instances) == 10 and cloud_count(s.studies) == 1, what="first forward")

        # the cloud goes down: the hospital keeps working
        cloud.kill()
        for i in range(2, 4):
            spec = s2 if i == 2 else s3
            assert ris(gw_url, "/ris/study/add", study(f"S{i}", spec.study_uid))["code"] == 0
            assert storescu(dicom_port, make_study(tmp_path / f"d{i}", spec, series=1, per_series=10)) == 0
        assert ris(gw_url, "/ris/study/delete", {"patientId": "PS1", "studyId": "S1", "accessNumber": "AS1",
                                                 "studyUid": s1.study_uid})["code"] == 0
        until(lambda: sync_status(gw_dir)["lastError"], what="a recorded error")
        status = sync_status(gw_dir)
        assert status["pending"]["records"] >= 3 and status["pending"]["instances"] == 20
        assert status["pending"]["bytes"] > 0 and status["oldestPendingSeconds"] > 0

        # the gateway dies mid-forward as the cloud comes back
        cloud.start()
        wait_http(cloud_url)
        time.sleep(0.5)
        gateway.kill()
        gateway.start()
        wait_http(gw_url)
        wait_dicom(dicom_port, calling="PACS1")
        until(lambda: sync_status(gw_dir)["pending"] == {"records": 0, "instances": 0, "bytes": 0}, what="drained")
        assert sync_status(gw_dir)["parked"] == 0
        with engine.connect() as c:
            rows = {r.study_id: r for r in c.execute(select(s.studies))}
            versions = c.execute(select(func.count()).select_from(s.study_versions)).scalar()
            n_inst = c.execute(select(func.count()).select_from(s.instances)).scalar()
            uids = c.execute(select(s.instances.c.sop_uid)).scalars().all()
            link = c.execute(select(s.links)).one()
        assert set(rows) == {"S1", "S2", "S3"} and rows["S1"].deleted and not rows["S2"].deleted
        assert versions == 4  # S1 add + delete, S2 add, S3 add: exactly once each
        assert n_inst == 30 and len(set(uids)) == 30
        assert link.token_hash and link.token_enc is None  # the cloud holds only the hash
        out = json.loads(admin(cloud_dir, "studies", "--json"))
        assert {r["studyId"]: r["received"]["images"] for r in out} == {"S1": 10, "S2": 10, "S3": 10}
    finally:
        engine.dispose()
        for p in (gateway, cloud):
            try:
                p.kill(signal.SIGTERM)
            except (ProcessLookupError, AttributeError):
                pass
