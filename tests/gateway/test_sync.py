"""Gateway -> cloud forwarding in one process: exactly once, long outages, parking.

The cloud is a real app over loopback HTTP with its own database; the
worker is driven pass by pass with an injectable clock, so "days" of outage
cost no waiting.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, insert, select

from yingyun.contract import sync as proto
from yingyun.gateway.sync import KIND, SyncWorker, purge_spool, sync_status
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage import schema as s
from yingyun.storage.blobs import LocalBlobStore
from yingyun.storage.db import default_sqlite_url
from yingyun.storage.queue import SqlJobQueue

from ..support.dicom_data import StudySpec, make_study
from ..support.net import free_port
from ..support.servers import ServerThread

KEY = "g" * 40
STUDY = {"patientId": "P1", "patientName": "张三丰", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
         "modality": "CT", "phoneNum": "13800138000"}


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:  # the gateway's
    return Settings(data_dir=tmp_path / "gw", database_url=database_url, public_url="https://film.example.test",
                    role="gateway", cloud_url="http://127.0.0.1:1", gateway_id="gw1", gateway_key=KEY)


@pytest.fixture
def cloud(tmp_path):
    from yingyun.serve import create_app

    rt = Runtime.open(Settings(data_dir=tmp_path / "cloud", database_url=default_sqlite_url(tmp_path / "cloud"),
                               role="cloud", dicom_enabled=False))
    rt.tenancy.add_hospital(hospital_id="h1", name="一院")
    rt.tenancy.add_gateway(gateway_id="gw1", hospital_id="h1", key=KEY)
    server = ServerThread(create_app(rt)).start()
    yield rt, server
    server.stop()
    rt.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def worker_for(runtime, url: str, clock=time.time) -> SyncWorker:
    return SyncWorker(db=runtime.db, vault=runtime.vault, blobs=LocalBlobStore(runtime.settings.blob_dir),
                      queue=SqlJobQueue(runtime.db), cloud_url=url, gateway_id="gw1", gateway_key=KEY, clock=clock)


def drain(worker: SyncWorker, passes: int = 50) -> None:
    for _ in range(passes):
        if not worker.run_once():
            return


def count(rt, table) -> int:
    with rt.db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def store_instances(runtime, tmp_path, spec, n=3):
    from yingyun.archive.instances import InstanceStore
    from yingyun.archive.part10 import store_part10
    from yingyun.gateway.sync import instance_hook

    store = InstanceStore(runtime.db, LocalBlobStore(runtime.settings.blob_dir),
                          on_instance=instance_hook(runtime.settings, runtime.db))
    try:
        for f in make_study(tmp_path / "dcm", spec, series=1, per_series=n):
            assert store_part10(store, hospital_id="h1", data=f.read_bytes()).status == 0
    finally:
        store.close()


def test_everything_arrives_exactly_once(runtime, tenant, ris, cloud, tmp_path):
    cloud_rt, cloud_server = cloud
    spec = StudySpec(accession="A1")
    assert ris.post("/ris/study/add", dict(STUDY, studyUid=spec.study_uid))["code"] == 0
    assert ris.post("/ris/report/add", {"reportNumber": "R1", "studyId": "S1", "accessNumber": "A1",
                                        "imageDescription": "所见", "conclusion": "结论"})["code"] == 0
    assert ris.post("/ris/getStudyQR", {"studyId": "S1"})["code"] == 0
    assert ris.post("/ris/reconcilelog", {"studyId": "S1", "accessNumber": "A1", "patientName": "张三丰",
                                          "studyUid": spec.study_uid, "studyDate": "2026-11-20", "reportCnt": 1,
                                          "pdfCnt": 0, "seriesCnt": 1, "imageCnt": 3})["code"] == 0
    store_instances(runtime, tmp_path, spec)
    status = sync_status(runtime.db)
    assert status["pending"]["records"] == 4 and status["pending"]["instances"] == 3
    worker = worker_for(runtime, cloud_server.url)
    drain(worker)
    assert sync_status(runtime.db)["pending"] == {"records": 0, "instances": 0, "bytes": 0}
    assert count(cloud_rt, s.studies) == 1 and count(cloud_rt, s.reports) == 1 and count(cloud_rt, s.instances) == 3
    assert count(cloud_rt, s.links) == 1 and count(cloud_rt, s.reconcile_logs) == 1
    # deliver everything again (at-least-once): nothing changes
    with runtime.db.write() as conn:
        conn.execute(s.metadata.tables["jobs"].update().values(state="pending", next_attempt_at=0, lease_until=None))
    drain(worker)
    assert count(cloud_rt, s.study_versions) == 1 and count(cloud_rt, s.report_versions) == 1
    assert count(cloud_rt, s.instances) == 3 and count(cloud_rt, s.reconcile_logs) == 1
    # a delete follows its add, in order
    assert ris.post("/ris/study/delete", {"patientId": "P1", "studyId": "S1", "accessNumber": "A1",
                                          "studyUid": spec.study_uid})["code"] == 0
    drain(worker)
    with cloud_rt.db.read() as conn:
        assert conn.execute(select(s.studies.c.deleted)).scalar() is True
    worker.client.close()


def test_outage_of_days_then_resume(runtime, tenant, ris, cloud):
    cloud_rt, cloud_server = cloud
    clock = Clock()
    dead = worker_for(runtime, f"http://127.0.0.1:{free_port()}", clock)
    assert ris.post("/ris/study/add", STUDY)["code"] == 0
    attempts_at = []
    for _ in range(400):  # three days in steps of 10 minutes
        if dead.run_once():
            attempts_at.append(clock.now)
        clock.now += 600
    status = sync_status(runtime.db, now=clock.now)
    assert status["pending"]["records"] == 1 and status["parked"] == 0 and "unreachable" in status["lastError"]
    gaps = [b - a for a, b in zip(attempts_at, attempts_at[1:])]
    assert max(gaps) <= 1200  # backoff caps at 10 minutes (plus the 10-minute step)
    assert len(attempts_at) > 100  # it kept trying for the whole outage
    live = worker_for(runtime, cloud_server.url, clock)
    clock.now += 1200
    drain(live)
    assert count(cloud_rt, s.studies) == 1
    assert sync_status(runtime.db, now=clock.now)["pending"]["records"] == 0
    dead.client.close()
    live.client.close()


def test_refused_record_is_parked_then_replayed(runtime, tenant, ris, cloud):
    cloud_rt, cloud_server = cloud
    queue = SqlJobQueue(runtime.db)
    assert ris.post("/ris/study/add", STUDY)["code"] == 0
    with runtime.db.write() as conn:  # a version the cloud cannot parse (no A fields)
        pk = conn.execute(insert(s.study_versions).values(
            study_pk=1, version=99, action="update", source="x", raw_enc=runtime.vault.encrypt("{}"), warnings="[]",
            received_at=time.time()).returning(s.study_versions.c.pk)).scalar()
        queue.enqueue(conn, kind=KIND, payload={"kind": "study", "versionPk": pk}, order_key="bad")
    worker = worker_for(runtime, cloud_server.url)
    drain(worker)
    status = sync_status(runtime.db)
    assert status["parked"] == 1 and status["pending"]["records"] == 0
    (job,) = queue.list(kind=KIND, states=["parked"])
    assert "100001" in job.last_error or "参数错误" in job.last_error
    assert queue.replay(kind=KIND, now=time.time(), pk=job.pk) == 1
    assert sync_status(runtime.db)["parked"] == 0
    worker.client.close()


def test_cloud_refuses_unsigned_and_foreign_gateways(cloud):
    import httpx
    import orjson

    _, server = cloud
    body = orjson.dumps({"records": []})
    assert httpx.post(server.url + proto.PATH_RECORDS, content=body).status_code == 401
    bad = proto.signed_headers("gw1", "x" * 40, body)
    assert httpx.post(server.url + proto.PATH_RECORDS, content=body, headers=bad).status_code == 401
    good = proto.signed_headers("gw1", KEY, body)
    assert httpx.post(server.url + proto.PATH_RECORDS, content=body, headers=good).json() == {"results": []}
    tampered = proto.signed_headers("gw1", KEY, body)
    assert httpx.post(server.url + proto.PATH_RECORDS, content=orjson.dumps({"records": [{}]}),
                      headers=tampered).status_code == 401


def test_spool_is_freed_after_retention(runtime, tenant, cloud, tmp_path):
    cloud_rt, cloud_server = cloud
    store_instances(runtime, tmp_path, StudySpec(), n=2)
    worker = worker_for(runtime, cloud_server.url)
    drain(worker)
    blobs = LocalBlobStore(runtime.settings.blob_dir)
    assert len(list(blobs.iter_keys())) == 2
    assert purge_spool(db=runtime.db, blobs=blobs, spool_days=7) == 0  # too recent
    assert purge_spool(db=runtime.db, blobs=blobs, spool_days=7, now=time.time() + 8 * 86400) == 2
    assert list(blobs.iter_keys()) == []
    assert count(cloud_rt, s.instances) == 2
    worker.client.close()


def test_the_cloud_returning_makes_the_whole_backlog_due(runtime, tenant, ris, cloud):
    """Jobs that failed during an outage wait out their own backoff (up to 10 minutes) only while the
    cloud is away: the first request it takes again makes every one of them due at once."""
    cloud_rt, cloud_server = cloud
    clock = Clock()
    worker = worker_for(runtime, f"http://127.0.0.1:{free_port()}", clock)
    assert ris.post("/ris/study/add", STUDY)["code"] == 0
    for _ in range(12):  # two hours of outage: the job's next attempt is minutes away
        clock.now += 600
        assert worker.run_once() == 1
    (job,) = SqlJobQueue(runtime.db).list(kind=KIND, states=["pending"])
    assert job.next_attempt_at > clock.now + 60
    assert ris.post("/ris/study/add", {**STUDY, "studyId": "S2", "accessNumber": "A2"})["code"] == 0
    worker.cloud_url = cloud_server.url
    assert worker.run_once() == 1  # only S2 was due; the cloud took it
    assert worker.run_once() == 1  # ... which made S1 due, without the clock moving
    assert count(cloud_rt, s.studies) == 2
    worker.client.close()


def test_running_worker_probes_a_dead_cloud_and_drains_when_it_returns(runtime, tenant, ris, tmp_path):
    from yingyun.serve import create_app

    port = free_port()
    worker = worker_for(runtime, f"http://127.0.0.1:{port}").start()
    try:
        for i in range(5):
            assert ris.post("/ris/study/add", {**STUDY, "studyId": f"S{i}", "accessNumber": f"A{i}"})["code"] == 0
        deadline = time.time() + 10
        while "unreachable" not in (sync_status(runtime.db)["lastError"] or "") and time.time() < deadline:
            time.sleep(0.1)
        assert sync_status(runtime.db)["pending"]["records"] == 5
        rt = Runtime.open(Settings(data_dir=tmp_path / "cloud", database_url=default_sqlite_url(tmp_path / "cloud"),
                                   role="cloud", dicom_enabled=False))
        rt.tenancy.add_hospital(hospital_id="h1", name="一院")
        rt.tenancy.add_gateway(gateway_id="gw1", hospital_id="h1", key=KEY)
        server = ServerThread(create_app(rt), port=port).start()
        try:
            deadline = time.time() + 30  # the link is probed at most 15 s apart
            while sync_status(runtime.db)["pending"]["records"] and time.time() < deadline:
                time.sleep(0.2)
            assert sync_status(runtime.db)["pending"]["records"] == 0
            assert count(rt, s.studies) == 5
        finally:
            server.stop()
            rt.close()
    finally:
        worker.stop()
