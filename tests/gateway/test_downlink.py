"""Final reports down the sync link (split deployment, in one process): the cloud (a real app over loopback
HTTP, on SQLite and PostgreSQL) keeps them per hospital; the gateway asks (POST /sync/v1/down), stores each,
acknowledges it in its next ask, and delivers it to its RIS. Exactly once, whatever is lost on the way.
"""

from __future__ import annotations

import time

import orjson
import pytest
from sqlalchemy import func, select

from yingyun.archive.accept import accept_report, accept_study
from yingyun.archive.downlink import queue_report_down
from yingyun.archive.events import NoEvents
from yingyun.contract import gateway_api as g
from yingyun.contract import sync as proto
from yingyun.contract.params import parse
from yingyun.gateway.delivery import DeliveryConfig, ReportDelivery
from yingyun.gateway.sync import KIND, SyncWorker
from yingyun.runtime import Runtime
from yingyun.serve import create_app
from yingyun.settings import Settings
from yingyun.storage import schema as s
from yingyun.storage.db import default_sqlite_url
from yingyun.storage.queue import SqlJobQueue

from ..support.ris_peers import RisReceiver
from ..support.servers import ServerThread

KEY = "g" * 40
TOKEN = "r" * 32
UID = "1.2.826.0.1.3680043.10.2.1"
STUDY = {"patientId": "P1", "patientName": "张三丰", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
         "modality": "CT", "studyUid": UID}
REPORT = {"reportNumber": "R1", "studyId": "S1", "accessNumber": "A1", "imageDescription": "所见",
          "conclusion": "结论", "reportDoctor": "李医生", "auditDoctor": "王主任"}


@pytest.fixture
def cloud(tmp_path, database_url):
    rt = Runtime.open(Settings(data_dir=tmp_path / "cloud", database_url=database_url, role="cloud",
                               dicom_enabled=False), create_keys=True, migrate=True)
    for h in ("h1", "h2"):
        rt.tenancy.add_hospital(hospital_id=h, name=f"医院{h}")
    rt.tenancy.add_gateway(gateway_id="gw1", hospital_id="h1", key=KEY)
    rt.tenancy.add_gateway(gateway_id="gw2", hospital_id="h2", key="h" * 40)
    server = ServerThread(create_app(rt)).start()
    yield rt, server
    server.stop()
    rt.close()


@pytest.fixture
def gateway(tmp_path):
    folder = tmp_path / "gw"
    rt = Runtime.open(Settings(data_dir=folder, database_url=default_sqlite_url(folder), role="gateway",
                               cloud_url="http://127.0.0.1:1", gateway_id="gw1", gateway_key=KEY),
                      create_keys=True, migrate=True)
    rt.tenancy.add_hospital(hospital_id="h1", name="一院")
    rt.tenancy.add_partner(app_id="ris1", token=TOKEN, hospitals=["h1"])
    with rt.db.write() as conn:  # the study as the hospital's RIS registered it at the gateway
        accept_study(conn, vault=rt.vault, hospital_id="h1", record=parse(g.STUDY_FIELDS, STUDY), source="ris1",
                     events=NoEvents())
    yield rt
    rt.close()


def finalise(rt: Runtime, report=REPORT, *, hospital="h1", study=STUDY, register=True) -> None:
    """At the cloud: the reading core's sign-off (accept_report, then queue_report_down in its transaction)."""
    with rt.db.write() as conn:
        if register:
            accept_study(conn, vault=rt.vault, hospital_id=hospital, record=parse(g.STUDY_FIELDS, study),
                         source="gw", events=NoEvents())
        accept_report(conn, vault=rt.vault, hospital_id=hospital, record=parse(g.REPORT_FIELDS, report),
                      source="cloud", events=NoEvents())
        queue_report_down(conn, study_uid=study["studyUid"])


def worker_for(rt: Runtime, url: str) -> SyncWorker:
    return SyncWorker(db=rt.db, vault=rt.vault, blobs=rt.blobs, queue=SqlJobQueue(rt.db), cloud_url=url,
                      gateway_id="gw1", gateway_key=KEY)


def waiting(rt: Runtime) -> int:
    d = s.report_downlink.c
    with rt.db.read() as conn:
        return conn.execute(select(func.count()).where(d.acked_at.is_(None))).scalar_one()


def gateway_reports(rt: Runtime) -> list[tuple[str, int, str]]:
    r, v = s.reports.c, s.report_versions.c
    with rt.db.read() as conn:
        return [tuple(row) for row in conn.execute(
            select(r.report_number, v.version, v.source).select_from(s.reports.join(s.report_versions,
                                                                                    v.report_pk == r.pk))
            .order_by(v.pk))]


def test_down_once_then_to_the_ris(cloud, gateway):
    cloud_rt, server = cloud
    finalise(cloud_rt)
    assert waiting(cloud_rt) == 1
    receiver = RisReceiver("ris1", TOKEN).up()
    worker = worker_for(gateway, server.url)
    delivery = ReportDelivery(db=gateway.db, vault=gateway.vault, tenancy=gateway.tenancy,
                              config=DeliveryConfig(ris_url=receiver.url))
    try:
        assert worker.pull_down() == 1
        assert waiting(cloud_rt) == 0  # acknowledged in the ask that found nothing more
        assert worker.pull_down() == 0
        for _ in range(3):
            delivery.run_once()
    finally:
        worker.stop()
        delivery.stop()
        receiver.down()
    assert gateway_reports(gateway) == [("R1", 1, "cloud")]
    (got,) = receiver.accepted
    assert got.body["studyUid"] == UID and got.body["status"] == "final" and got.body["conclusion"] == "结论"
    with gateway.db.read() as conn:  # it does not travel back up
        payloads = [orjson.loads(p) for p in conn.execute(select(s.jobs.c.payload).where(s.jobs.c.kind == KIND))
                    .scalars()]
    assert [p for p in payloads if p["kind"] == proto.REPORT] == []


def test_a_lost_acknowledgement_stores_nothing_twice(cloud, gateway):
    cloud_rt, server = cloud
    finalise(cloud_rt)
    worker = worker_for(gateway, server.url)
    try:
        body = orjson.dumps({"ack": []})
        first = worker._post(proto.PATH_DOWN, body, "application/json").json()
        again = worker._post(proto.PATH_DOWN, body, "application/json").json()  # as if the first answer was lost
        assert [r["id"] for r in first["reports"]] == [r["id"] for r in again["reports"]]
        assert worker.pull_down() == 1
        worker._down_ack = []  # the gateway stops before it acknowledges: the cloud offers it again
        assert worker.pull_down() == 0 and waiting(cloud_rt) == 0
    finally:
        worker.stop()
    assert gateway_reports(gateway) == [("R1", 1, "cloud")]
    with gateway.db.read() as conn:
        finals = conn.execute(select(func.count()).where(s.jobs.c.kind == "report-final")).scalar_one()
    assert finals == 1


def test_an_amendment_comes_down_as_a_new_delivery(cloud, gateway):
    cloud_rt, server = cloud
    finalise(cloud_rt)
    finalise(cloud_rt, dict(REPORT, conclusion="修正后的结论"), register=False)
    worker = worker_for(gateway, server.url)
    try:
        assert worker.pull_down() == 2
    finally:
        worker.stop()
    assert gateway_reports(gateway) == [("R1", 1, "cloud"), ("R1", 2, "cloud")]


def test_each_gateway_gets_its_own_hospitals_reports_only(cloud, gateway):
    cloud_rt, server = cloud
    finalise(cloud_rt, hospital="h2", study=dict(STUDY, studyUid="1.2.3.4.9"))
    worker = worker_for(gateway, server.url)
    try:
        assert worker.pull_down() == 0
        # another gateway's id acknowledged by this one settles nothing
        with cloud_rt.db.read() as conn:
            other = conn.execute(select(s.report_downlink.c.event_id)).scalar_one()
        worker._down_ack = [other]
        assert worker.pull_down() == 0
    finally:
        worker.stop()
    assert waiting(cloud_rt) == 1 and gateway_reports(gateway) == []


def test_the_link_down_loses_nothing(cloud, gateway, tmp_path):
    cloud_rt, server = cloud
    finalise(cloud_rt)
    port = server.port
    server.stop()
    worker = worker_for(gateway, f"http://127.0.0.1:{port}")
    try:
        assert worker.pull_down() == 0  # refused: nothing stored, nothing lost
        assert waiting(cloud_rt) == 1
        back = ServerThread(create_app(cloud_rt), port=port).start()
        try:
            deadline = time.time() + 20
            stored = 0
            while not stored and time.time() < deadline:
                stored = worker.pull_down()
        finally:
            back.stop()
    finally:
        worker.stop()
    assert stored == 1 and gateway_reports(gateway) == [("R1", 1, "cloud")]
    assert waiting(cloud_rt) == 0


def test_a_malformed_ask_is_refused(cloud):
    _, server = cloud
    import httpx

    body = orjson.dumps({"ack": "everything"})
    headers = {"Content-Type": "application/json", **proto.signed_headers("gw1", KEY, body)}
    r = httpx.post(server.url + proto.PATH_DOWN, content=body, headers=headers, timeout=60)
    assert r.status_code == 400
    r = httpx.post(server.url + proto.PATH_DOWN, content=b"{}", headers={proto.H_GATEWAY: "gw1"}, timeout=60)
    assert r.status_code == 401
