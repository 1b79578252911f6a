"""A gateway and a cloud as two real processes over loopback (issue [4/6]).

The cloud is killed during steady RIS traffic and a C-STORE storm, the
gateway is SIGKILLed mid-forward; after restarts every study, report,
delete and instance is in the cloud exactly once.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, func, select

from yingyun.contract.signing import signed_headers
from yingyun.core.times import DEFAULT_TIMEZONE, Zone
from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, make_study
from ..support.net import free_port, wait_http

YINGYUN = str(Path(sys.executable).parent / "yingyun")
KEY = "k" * 40
TOKEN = "t" * 32


def prepare(data_dir: Path) -> None:
    """A new data dir, as an operator makes one before the first start (admin commands create nothing)."""
    subprocess.run([YINGYUN, "db", "upgrade", "--data-dir", str(data_dir)], check=True, capture_output=True, timeout=60)


def admin(data_dir: Path, *args: str) -> str:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(data_dir)], check=True, capture_output=True,
                          text=True, timeout=60).stdout


class Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.args, self.log = args, log
        self.p: subprocess.Popen | None = None

    def start(self) -> Proc:
        with open(self.log, "a") as err:  # the child keeps its own copy of the descriptor
            self.p = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        os.killpg(self.p.pid, sig)
        self.p.wait(timeout=30)


def stop(*procs: Proc) -> None:
    """SIGTERM each process that was started and still runs."""
    for p in procs:
        try:
            p.kill(signal.SIGTERM)
        except (ProcessLookupError, AttributeError):
            pass


def ris(url: str, path: str, body: dict) -> dict:
    r = httpx.post(url + path, content=orjson.dumps(body), headers=signed_headers("ris1", TOKEN), timeout=30)
    return r.json()


def study(study_id: str, uid: str) -> dict:
    return {"patientId": "P" + study_id, "patientName": "张三丰", "patientSex": "M", "studyId": study_id,
            "accessNumber": "A" + study_id, "modality": "CT", "studyUid": uid, "phoneNum": "13800138000"}


def storescu(port: int, files) -> int:
    return subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(port),
                           *map(str, files)],
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
    prepare(cloud_dir)
    prepare(gw_dir)
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
                    "--dicom-port", str(dicom_port), "--cloud-url", cloud_url, "--gateway-id", "gw1", "--gateway-key",
                    KEY,
                    "--public-url", "https://film.example.test", "--dicom-workers", "1"], tmp_path / "gw.log").start()
    wait_http(cloud_url)
    wait_http(gw_url)  # healthy: its DICOM port serves associations too
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
        # Everything waits at the gateway (a job error is not a sign to wait for: once the link is known to be
        # down the worker probes it instead of attempting jobs, so whether one is recorded is a race).
        until(lambda: (p := sync_status(gw_dir)["pending"])["records"] >= 3 and p["instances"] == 20,
              what="the outage's work waiting at the gateway")
        status = sync_status(gw_dir)
        assert status["pending"]["bytes"] > 0 and status["oldestPendingSeconds"] > 0

        # the gateway dies mid-forward as the cloud comes back
        cloud.start()
        wait_http(cloud_url)
        time.sleep(0.5)
        gateway.kill()
        gateway.start()
        wait_http(gw_url)
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
        stop(gateway, cloud)


def test_large_instances_through_the_split_deployment(tmp_path, large_files_dropped):
    """20 MiB and 300 MiB instances (the larger above the old 256 MiB sync limit) go from a
    gateway process to a cloud process and come back byte-identical through the cloud's
    WADO-RS; neither process's peak resident set rises by much while they travel."""
    from yingyun.core.dicom import read_file_info
    from yingyun.runtime import Runtime
    from yingyun.settings import Settings
    from yingyun.storage.db import default_sqlite_url

    from ..support.dicom_data import sha256_of, write_large
    from ..support.memory import MiB, PeakRss

    cloud_dir, gw_dir = tmp_path / "cloud", tmp_path / "gateway"
    prepare(cloud_dir)
    prepare(gw_dir)
    admin(cloud_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    token = admin(cloud_dir, "token", "add", "--name", "ops", "--hospital", "h1").split("token: ")[1].split()[0]
    admin(gw_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    cloud_port, gw_port, dicom_port = free_port(), free_port(), free_port()
    cloud_url, gw_url = f"http://127.0.0.1:{cloud_port}", f"http://127.0.0.1:{gw_port}"

    # What the gateway's receiver stored (streamed into its store and queued for the cloud).
    spec = StudySpec(accession="BIG")
    sources = [write_large(tmp_path / f"{n}.dcm", spec, size=n * MiB, seed=n) for n in (20, 300)]
    gw_settings = Settings(data_dir=gw_dir, database_url=default_sqlite_url(gw_dir), role="gateway",
                           cloud_url=cloud_url, gateway_id="gw1", gateway_key=KEY)
    rt = Runtime.open(gw_settings, create_keys=False, migrate=False)
    store = rt.instances  # the gateway's, with its hook: queued for the cloud
    expected = {}
    try:
        for path in sources:
            with open(path, "rb") as f:
                info = read_file_info(f)
                f.seek(info.dataset_offset)
                expected[info.sop_instance_uid] = (info, sha256_of(f))
                f.seek(info.dataset_offset)
                assert store.store(hospital_id="h1", data=f, transfer_syntax_uid=info.transfer_syntax_uid).status == 0
    finally:
        rt.close()

    cloud = Proc([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1", "--http-port",
                  str(cloud_port)],
                 tmp_path / "cloud.log").start()
    gateway = Proc([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port", str(gw_port),
                    "--dicom-port", str(dicom_port), "--cloud-url", cloud_url, "--gateway-id", "gw1", "--gateway-key",
                    KEY,
                    "--public-url", "https://film.example.test", "--dicom-workers", "1"], tmp_path / "gw.log").start()
    try:
        wait_http(cloud_url)
        wait_http(gw_url)
        # The cloud does not know the gateway yet (401: the gateway only probes), so nothing
        # travels before both peaks are reset; then it is registered and the backlog moves.
        until(lambda: sync_status(gw_dir)["lastError"], what="the gateway's first refused attempt")
        gw_rss, cloud_rss = PeakRss(gateway.p.pid).reset(), PeakRss(cloud.p.pid).reset()
        admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
        until(lambda: sync_status(gw_dir)["pending"] == {"records": 0, "instances": 0, "bytes": 0}, timeout=300,
              what="the large instances forwarded")
        rises = gw_rss.rise(), cloud_rss.rise()
        assert sync_status(gw_dir)["parked"] == 0
        auth = {"Authorization": f"Bearer {token}", "Accept": "application/dicom"}
        for sop, (info, digest) in expected.items():
            url = f"{cloud_url}/dicomweb/studies/{info.study_uid}/series/{info.series_uid}/instances/{sop}"
            h, head, skip = hashlib.sha256(), b"", None
            with httpx.stream("GET", url, headers=auth, timeout=300) as r:
                assert r.status_code == 200
                for chunk in r.iter_bytes(MiB):  # skip the file meta the cloud wrote, hash the dataset
                    if skip is None:
                        head += chunk
                        if len(head) < 144:
                            continue
                        skip, chunk = 144 + int.from_bytes(head[140:144], "little"), head
                    h.update(chunk[skip:])
                    skip = max(0, skip - len(chunk))
            assert h.hexdigest() == digest
        print(f"peak RSS rise while 320 MiB travelled: gateway {rises[0] / MiB:.0f} MiB, "
              f"cloud {rises[1] / MiB:.0f} MiB")
        assert rises[0] < 64 * MiB and rises[1] < 64 * MiB, [r / MiB for r in rises]
    finally:
        stop(gateway, cloud)


def test_the_cloud_sees_each_gateways_backlog(tmp_path):
    """The gateway's outbox is in the gateway's database: what waits there while the cloud is down is reported
    on the sync link as soon as it returns, and an operator signed in to the cloud's /api/v1/stats sees it,
    then sees it drained."""
    cloud_dir, gw_dir = tmp_path / "cloud", tmp_path / "gateway"
    prepare(cloud_dir)
    prepare(gw_dir)
    admin(cloud_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
    subprocess.run([YINGYUN, "admin", "user", "add", "--username", "op", "--name", "运维", "--role", "operator",
                    "--password-stdin", "--data-dir", str(cloud_dir)], input="operator-password-1\n", text=True,
                   check=True, capture_output=True, timeout=60)
    admin(gw_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(gw_dir, "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
    admin(gw_dir, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
    cloud_port, gw_port, dicom_port = free_port(), free_port(), free_port()
    cloud_url, gw_url = f"http://127.0.0.1:{cloud_port}", f"http://127.0.0.1:{gw_port}"
    cloud = Proc([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1", "--http-port",
                  str(cloud_port)], tmp_path / "cloud.log")
    gateway = Proc([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port", str(gw_port),
                    "--dicom-port", str(dicom_port), "--cloud-url", cloud_url, "--gateway-id", "gw1", "--gateway-key",
                    KEY, "--public-url", "https://film.example.test", "--dicom-workers", "1"],
                   tmp_path / "gw.log").start()
    try:
        wait_http(gw_url)
        spec = StudySpec(accession="AB1")
        assert ris(gw_url, "/ris/study/add", study("B1", spec.study_uid))["code"] == 0
        assert storescu(dicom_port, make_study(tmp_path / "d", spec, series=1, per_series=6)) == 0
        waiting = sync_status(gw_dir)["pending"]
        assert waiting["records"] == 1 and waiting["instances"] == 6

        cloud.start()  # the link returns: the gateway reports its backlog, then drains it, then reports again
        wait_http(cloud_url)
        op = httpx.Client(base_url=cloud_url, timeout=30)
        signed_in = op.post("/api/v1/session", json={"username": "op", "password": "operator-password-1"}).json()
        assert signed_in["code"] == 0, signed_in

        def backlog() -> dict | None:
            day = datetime.now(Zone(DEFAULT_TIMEZONE).tz).date().isoformat()  # today in the cloud's zone
            body = op.get("/api/v1/stats", params={"from": day, "to": day}).json()
            assert body["code"] == 0, body
            (gw,) = body["data"]["gauges"]["gateways"]
            assert gw["gatewayId"] == "gw1" and gw["hospitalId"] == "h1"
            return gw if gw["backlog"] and gw["backlog"]["pending"] == 0 else None

        gw = until(backlog, what="the drained gateway's report")
        # The report before the last one is the backlog as it stood when the link returned.
        assert gw["backlog"]["previousPending"] == 7 and gw["backlog"]["growing"] is False
        assert gw["backlog"]["parked"] == 0 and gw["backlog"]["gatewayLastSuccessAt"] and gw["lastSuccessAt"]
        op.close()
    finally:
        stop(gateway, cloud)
