"""A final report written at the cloud reaches the gateway's RIS, as two real processes over loopback (issue 15
item 7): the report is signed off while the link is down, and the RIS itself is down when it first arrives; it
gets the signed report exactly once.
"""

from __future__ import annotations

import json
import time

import httpx
import orjson
from sqlalchemy import create_engine, func, select

from yingyun.archive.accept import accept_report
from yingyun.archive.downlink import queue_report_down
from yingyun.archive.events import NoEvents
from yingyun.contract import gateway_api as g
from yingyun.contract.params import parse
from yingyun.contract.signing import signed_headers
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage import schema as s
from yingyun.storage.db import default_sqlite_url

from ..support.net import free_port, wait_http
from ..support.ris_peers import RisReceiver
from .test_split import KEY, TOKEN, YINGYUN, Proc, admin, prepare, stop, until

UID = "1.2.826.0.1.3680043.10.3.1"


def sign_off_at_the_cloud(cloud_dir) -> None:
    """What the reading core does when a reviewer approves: the report, then queue_report_down, one transaction."""
    rt = Runtime.open(Settings(data_dir=cloud_dir, database_url=default_sqlite_url(cloud_dir), role="cloud",
                               dicom_enabled=False), create_keys=False, migrate=False)
    try:
        with rt.db.write() as conn:
            accept_report(conn, vault=rt.vault, hospital_id="h1", source="cloud", events=NoEvents(),
                          record=parse(g.REPORT_FIELDS, {
                              "reportNumber": "CR1", "studyId": "S1", "accessNumber": "A1",
                              "imageDescription": "双肺纹理清晰。", "conclusion": "胸部CT未见异常",
                              "reportDoctor": "李医生", "reportTime": "2026-12-02 09:00:00",
                              "auditDoctor": "王主任", "auditTime": "2026-12-02 09:30:00"}))
            queue_report_down(conn, study_uid=UID)
    finally:
        rt.close()


def test_the_report_reaches_the_gateways_ris_after_the_link_was_down(tmp_path):
    cloud_dir, gw_dir = tmp_path / "cloud", tmp_path / "gateway"
    prepare(cloud_dir)
    prepare(gw_dir)
    admin(cloud_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
    admin(gw_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(gw_dir, "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
    receiver = RisReceiver("ris1", TOKEN)  # down for now

    cloud_port, gw_port = free_port(), free_port()
    cloud_url, gw_url = f"http://127.0.0.1:{cloud_port}", f"http://127.0.0.1:{gw_port}"
    cloud = Proc([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1",
                  "--http-port", str(cloud_port)], tmp_path / "cloud.log").start()
    gateway = Proc([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port", str(gw_port),
                    "--dicom-port", str(free_port()), "--cloud-url", cloud_url, "--gateway-id", "gw1",
                    "--gateway-key", KEY, "--public-url", "https://film.example.test", "--dicom-workers", "1",
                    "--ris-report-url", receiver.url], tmp_path / "gw.log").start()
    engine = create_engine(f"sqlite:///{cloud_dir / 'yingyun.db'}")

    def cloud_studies() -> int:
        with engine.connect() as c:
            return c.execute(select(func.count()).select_from(s.studies)).scalar()

    try:
        wait_http(cloud_url)
        wait_http(gw_url)
        study = {"patientId": "P1", "patientName": "张三丰", "patientSex": "M", "studyId": "S1",
                 "accessNumber": "A1", "modality": "CT", "studyUid": UID}
        r = httpx.post(gw_url + "/ris/study/add", content=orjson.dumps(study), headers=signed_headers("ris1", TOKEN))
        assert r.json()["code"] == 0
        until(lambda: cloud_studies() == 1, what="the study at the cloud")

        cloud.kill()  # the link goes down; the reading centre signs the report off meanwhile
        sign_off_at_the_cloud(cloud_dir)
        time.sleep(3)  # the gateway asks and gets no answer
        cloud.start()
        wait_http(cloud_url)

        def waiting() -> list[dict]:
            return json.loads(admin(gw_dir, "ris-deliveries", "--json"))

        rows = until(lambda: [d for d in waiting() if d["lastError"]], what="a delivery the RIS did not take")
        assert rows[0]["channel"] == "ris" and rows[0]["state"] == "pending" and rows[0]["studyUid"] == UID
        receiver.up()
        until(lambda: receiver.accepted, timeout=120, what="the report at the RIS")
        until(lambda: waiting()[0]["state"] == "delivered", what="delivered")
        time.sleep(3)  # a second ask, a second pass: nothing more arrives
    finally:
        engine.dispose()
        stop(gateway, cloud)
        receiver.down()
    assert receiver.bad_signatures == []
    (got,) = receiver.accepted
    assert got.body["reportNumber"] == "CR1" and got.body["conclusion"] == "胸部CT未见异常"
    assert got.body["studyUid"] == UID and got.body["status"] == "final"
    gw = create_engine(f"sqlite:///{gw_dir / 'yingyun.db'}")
    try:
        with gw.connect() as c:
            assert c.execute(select(s.reports.c.report_number)).scalars().all() == ["CR1"]
    finally:
        gw.dispose()
