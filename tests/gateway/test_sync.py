"""Gateway -> cloud forwarding in one process: exactly once, long outages, parking.

The cloud is a real app over loopback HTTP with its own database; the
worker is driven pass by pass with an injectable clock, so "days" of outage
cost no waiting.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from yingyun.contract import sync as proto
from yingyun.gateway.sync import KIND, SyncWorker, purge_spool, sync_status
from yingyun.runtime import Runtime
from yingyun.settings import Settings
from yingyun.storage import schema as s
from yingyun.storage.db import default_sqlite_url
from yingyun.storage.queue import SqlJobQueue

from yingyun.core.dicom import read_file_info

from ..support.dicom_data import StudySpec, make_study, sha256_of, write_large
from ..support.memory import MiB, traced_peak
from ..support.net import free_port
from ..support.servers import ServerThread

KEY = "g" * 40
YINGYUN = str(Path(sys.executable).parent / "yingyun")
STUDY = {"patientId": "P1", "patientName": "张三丰", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
         "modality": "CT", "phoneNum": "13800138000"}


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:  # the gateway's
    return Settings(data_dir=tmp_path / "gw", database_url=database_url, public_url="https://film.example.test",
                    role="gateway", cloud_url="http://127.0.0.1:1", gateway_id="gw1", gateway_key=KEY)


@contextmanager
def a_cloud(folder: Path, blobs=None, **settings) -> Iterator[tuple[Runtime, ServerThread]]:
    from yingyun.serve import create_app

    rt = Runtime.open(Settings(data_dir=folder, database_url=default_sqlite_url(folder), role="cloud",
                               dicom_enabled=False, **settings), create_keys=True, migrate=True)
    if blobs is not None:
        rt.blobs = blobs
    rt.tenancy.add_hospital(hospital_id="h1", name="一院")
    rt.tenancy.add_gateway(gateway_id="gw1", hospital_id="h1", key=KEY)
    server = ServerThread(create_app(rt)).start()
    try:
        yield rt, server
    finally:
        server.stop()
        rt.close()


@pytest.fixture
def cloud(tmp_path):
    with a_cloud(tmp_path / "cloud") as c:
        yield c


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def worker_for(runtime, url: str, clock=time.time) -> SyncWorker:
    return SyncWorker(db=runtime.db, vault=runtime.vault, blobs=runtime.blobs,
                      queue=SqlJobQueue(runtime.db), cloud_url=url, gateway_id="gw1", gateway_key=KEY, clock=clock)


def drain(worker: SyncWorker, passes: int = 50) -> None:
    for _ in range(passes):
        if not worker.run_once():
            return


def count(rt, table) -> int:
    with rt.db.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def store_instances(runtime, tmp_path, spec, n=3):
    from yingyun.archive.part10 import store_part10

    for f in make_study(tmp_path / "dcm", spec, series=1, per_series=n):
        assert store_part10(runtime.instances, hospital_id="h1", data=f.read_bytes()).status == 0


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
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
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


def test_the_cloud_rejects_a_record_with_the_code_the_gateway_would_have_answered(cloud):
    """The sync ingest accepts records by the same path as /ris/* (archive.accept), and refuses them in the
    same words: a record that cannot apply is rejected with its vendor message, never a 503 that retries it."""
    import orjson

    _, server = cloud
    delete = {"studyId": "S404", "accessNumber": "A404", "studyUid": "1.2.3", "patientId": "P1"}
    records = [{"eventId": "e-delete", "kind": proto.DELETE, "receivedAt": time.time(), "source": "ris1",
                "body": delete},
               {"eventId": "e-range", "kind": proto.RECONCILE_RANGE, "receivedAt": time.time(), "source": "ris1",
                "body": {"startTime": "2026-01-01 00:00:00", "endTime": "2026-01-02 00:00:00"}}]
    body = orjson.dumps({"records": records})
    answer = httpx.post(server.url + proto.PATH_RECORDS, content=body, headers=proto.signed_headers("gw1", KEY, body))
    assert answer.status_code == 200
    assert answer.json()["results"] == [
        {"eventId": "e-delete", "status": proto.REJECTED, "error": "数据不存在: no study with studyId 'S404'"},
        {"eventId": "e-range", "status": proto.REJECTED, "error": "参数错误: missing required field(s): studyList"}]


def test_spool_is_freed_after_retention(runtime, tenant, cloud, tmp_path):
    cloud_rt, cloud_server = cloud
    store_instances(runtime, tmp_path, StudySpec(), n=2)
    worker = worker_for(runtime, cloud_server.url)
    drain(worker)
    blobs = runtime.blobs
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
                                   role="cloud", dicom_enabled=False), create_keys=True, migrate=True)
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


# -- large instances (items 1 and 23 of issue 12) ----------------------------------------------

BOUND = 32 * MiB  # what a transfer may cost in memory, gateway and cloud together, whatever the instance's size


def store_file(runtime, path: Path, hospital_id: str = "h1") -> str:
    """Store a Part-10 file at the gateway as its receiver does (streamed, queued for the cloud); its SOP UID."""
    with open(path, "rb") as f:
        info = read_file_info(f)
        f.seek(info.dataset_offset)
        assert runtime.instances.store(hospital_id=hospital_id, data=f,
                                       transfer_syntax_uid=info.transfer_syntax_uid).status == 0
    return info.sop_instance_uid


def dataset_sha256(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return sha256_of(f)


def stored_dataset_sha256(rt, sop_uid: str) -> str:
    """The SHA-256 of the dataset of an instance as the cloud stored it (after the file meta it wrote)."""
    with rt.db.read() as conn:
        key = conn.execute(select(s.instances.c.blob_key).where(s.instances.c.sop_uid == sop_uid)).scalar_one()
    with rt.blobs.open(key) as f:
        head = f.read(144)
        f.seek(144 + int.from_bytes(head[140:144], "little"))
        return sha256_of(f)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_large_instances_reach_the_cloud_streamed(runtime, tenant, cloud, tmp_path, large_files_dropped):
    """20 MiB and 300 MiB (above the old 256 MiB limit of the sync endpoint) arrive byte-identical,
    each streamed from the gateway's blob into the cloud's store."""
    cloud_rt, cloud_server = cloud
    spec = StudySpec(accession="BIG")
    sources = [write_large(tmp_path / f"{n}.dcm", spec, size=n * MiB, seed=n) for n in (20, 300)]
    uids = {store_file(runtime, p): dataset_sha256(p, read_file_info(p).dataset_offset) for p in sources}
    worker = worker_for(runtime, cloud_server.url)
    with traced_peak() as peak:
        drain(worker)
    worker.client.close()
    assert sync_status(runtime.db)["pending"] == {"records": 0, "instances": 0, "bytes": 0}
    assert sync_status(runtime.db)["parked"] == 0
    assert {uid: stored_dataset_sha256(cloud_rt, uid) for uid in uids} == uids
    print(f"forwarding 320 MiB cost {peak.mib:.0f} MiB (bound {BOUND // MiB} MiB)")
    assert peak.bytes < BOUND, f"forwarding 320 MiB cost {peak.mib:.0f} MiB"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_instance_the_cloud_refuses_as_too_large_is_parked_with_its_reason(runtime, tenant, tmp_path, settings):
    """The cloud takes at most 4 MiB: the batch holding a 6 MiB instance is answered 413; the small
    instances go on in smaller batches, the large one is parked with the reason, never retried."""
    spec = StudySpec(accession="TOO-BIG")
    big = store_file(runtime, write_large(tmp_path / "big.dcm", spec, size=6 * MiB))
    store_instances(runtime, tmp_path, spec, n=3)
    with a_cloud(tmp_path / "cloud", max_upload_bytes=4 * MiB) as (cloud_rt, server):
        worker = worker_for(runtime, server.url)
        drain(worker)
        for _ in range(3):  # later passes leave it alone
            assert worker.run_once() == 0
        worker.client.close()
        assert count(cloud_rt, s.instances) == 3
    status = sync_status(runtime.db)
    assert status["pending"]["instances"] == 0 and status["parked"] == 1
    [item] = status["parkedItems"]
    assert item["kind"] == "instance" and item["bytes"] > 6 * MiB
    assert "413" in item["error"] and "too large" in item["error"] and str(4 * MiB) in item["error"]
    (job,) = SqlJobQueue(runtime.db).list(kind=KIND, states=["parked"])
    assert job.payload["sopUid"] == big and job.attempts == 2  # once in a batch, once alone
    # what the operator sees
    shown = json.loads(subprocess.run(
        [YINGYUN, "admin", "sync", "--json", "--data-dir", str(settings.data_dir), "--database-url",
         settings.database_url], capture_output=True, text=True, check=True, timeout=60).stdout)
    assert shown["parked"] == 1 and shown["parkedItems"][0]["error"] == item["error"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_instances_the_cloud_has_no_room_for_stay_pending_and_arrive_later(runtime, tenant, tmp_path):
    """A refusal that is not the data's fault (0xA700, the cloud's disk nearly full) is answered 503:
    the gateway keeps the instances and sends them again, never parks them."""
    spec = StudySpec(accession="NO-ROOM")
    store_instances(runtime, tmp_path, spec, n=2)
    with a_cloud(tmp_path / "cloud", min_free_bytes=2**62) as (cloud_rt, server):
        clock = Clock()
        worker = worker_for(runtime, server.url, clock)
        for _ in range(3):
            worker.run_once()
            clock.now += 1200  # past any backoff
        status = sync_status(runtime.db, now=clock.now)
        assert status["pending"]["instances"] == 2 and status["parked"] == 0
        assert count(cloud_rt, s.instances) == 0
        cloud_rt.instances.min_free_bytes = 0  # room again
        drain(worker)
        worker.client.close()
        assert count(cloud_rt, s.instances) == 2


def limiting_proxy(upstream: str, limit: int):
    """A reverse proxy before the cloud that refuses bodies over `limit` with a bare 413,
    as nginx's client_max_body_size does (no limitBytes in the answer)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def forward(request: Request) -> Response:
        body = await request.body()
        if len(body) > limit:
            return PlainTextResponse("413 Request Entity Too Large", 413)
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
        async with httpx.AsyncClient() as client:
            r = await client.request(request.method, upstream + request.url.path, content=body, headers=headers)
        return Response(r.content, r.status_code, media_type=r.headers.get("content-type"))

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_proxy_refusing_large_bodies_is_never_retried_forever(runtime, tenant, ris, cloud, tmp_path):
    """Behind a proxy with a 1 KiB body limit: records go one by one, every instance (1.4 KiB)
    is parked as too large; nothing stays pending."""
    cloud_rt, cloud_server = cloud
    for i in range(4):
        assert ris.post("/ris/study/add", {**STUDY, "studyId": f"S{i}", "accessNumber": f"A{i}"})["code"] == 0
    store_instances(runtime, tmp_path, StudySpec(), n=3)
    proxy = ServerThread(limiting_proxy(cloud_server.url, 1024)).start()
    try:
        worker = worker_for(runtime, proxy.url)
        drain(worker)
        assert worker.run_once() == 0
        worker.client.close()
    finally:
        proxy.stop()
    assert count(cloud_rt, s.studies) == 4
    status = sync_status(runtime.db)
    assert status["pending"] == {"records": 0, "instances": 0, "bytes": 0} and status["parked"] == 3
    assert all("413" in i["error"] and "proxy" in i["error"] for i in status["parkedItems"])


def test_a_large_instance_reaches_a_cloud_on_s3_once(runtime, tenant, tmp_path, large_files_dropped):
    """Into the S3 store (the emulator): streamed in, and a second delivery is a duplicate."""
    from ..support.s3 import s3_store

    path = write_large(tmp_path / "20.dcm", StudySpec(accession="S3"), size=20 * MiB)
    sop = store_file(runtime, path)
    with a_cloud(tmp_path / "cloud", blobs=s3_store()) as (cloud_rt, server):
        worker = worker_for(runtime, server.url)
        drain(worker)
        with runtime.db.write() as conn:  # at-least-once: the cloud gets it again
            conn.execute(s.metadata.tables["jobs"].update().values(state="pending", next_attempt_at=0,
                                                                   lease_until=None))
        drain(worker)
        worker.client.close()
        assert sync_status(runtime.db)["pending"]["instances"] == 0 and sync_status(runtime.db)["parked"] == 0
        assert count(cloud_rt, s.instances) == 1 and count(cloud_rt, s.superseded_instances) == 0
        assert stored_dataset_sha256(cloud_rt, sop) == dataset_sha256(path, read_file_info(path).dataset_offset)
        assert not (cloud_rt.settings.blob_dir.exists() and any(cloud_rt.settings.blob_dir.rglob("*.dcm")))


def test_the_gateway_reports_its_backlog_and_the_cloud_keeps_the_last_report(runtime, tenant, ris, cloud, tmp_path):
    """The outbox is in the gateway's database: the gateway reports it on the sync link, the cloud keeps the
    last report per gateway (and the pending count of the one before), and its gauges show both."""
    from yingyun.cloud.stats.service import StatsService
    from yingyun.core.times import Zone

    cloud_rt, cloud_server = cloud
    gauges = StatsService(cloud_rt.db, zone=Zone(cloud_rt.settings.timezone), data_dir=cloud_rt.settings.data_dir)
    (before,) = gauges.gauges(hospitals=None)["gateways"]
    assert before["gatewayId"] == "gw1" and before["backlog"] is None  # never reported

    assert ris.post("/ris/study/add", STUDY)["code"] == 0
    worker = worker_for(runtime, cloud_server.url)
    assert worker.report_outbox()
    (gw,) = gauges.gauges(hospitals=None)["gateways"]
    assert gw["backlog"]["pending"] == 1 and gw["backlog"]["pendingRecords"] == 1
    assert gw["backlog"]["growing"] is False and gw["backlog"]["previousPending"] is None
    assert gw["backlog"]["oldestPendingSeconds"] >= 0 and gw["backlog"]["reportedAt"]

    store_instances(runtime, tmp_path, StudySpec(accession="A1"), n=3)
    assert worker.report_outbox()
    b = gauges.gauges(hospitals=None)["gateways"][0]["backlog"]
    assert (b["pending"], b["pendingInstances"], b["previousPending"], b["growing"]) == (4, 3, 1, True)
    assert b["pendingBytes"] > 0 and b["parked"] == 0
    assert gauges.gauges(hospitals=frozenset({"h2"}))["gateways"] == []  # outside the caller's hospitals

    drain(worker)
    assert worker.report_outbox()
    gw = gauges.gauges(hospitals=None)["gateways"][0]
    assert (gw["backlog"]["pending"], gw["backlog"]["previousPending"], gw["backlog"]["growing"]) == (0, 4, False)
    assert gw["backlog"]["gatewayLastSuccessAt"] and gw["lastSuccessAt"]
    worker.client.close()


def test_the_cloud_refuses_a_malformed_or_unsigned_outbox_report(cloud):
    import orjson

    cloud_rt, server = cloud
    good = {"pendingRecords": 1, "pendingInstances": 0, "pendingBytes": 0, "parked": 0,
            "oldestPendingSeconds": 2.5, "lastSuccessAt": None}
    unsigned = httpx.post(server.url + proto.PATH_OUTBOX, content=orjson.dumps(good))
    assert unsigned.status_code == 401
    for bad in ({**good, "parked": -1}, {**good, "pendingRecords": "1"}, {**good, "oldestPendingSeconds": None}, []):
        body = orjson.dumps(bad)
        r = httpx.post(server.url + proto.PATH_OUTBOX, content=body, headers=proto.signed_headers("gw1", KEY, body))
        assert r.status_code == 400, bad
        assert r.json()["error"]
    assert count(cloud_rt, s.gateway_outbox) == 0  # nothing half-written
    body = orjson.dumps(good)
    r = httpx.post(server.url + proto.PATH_OUTBOX, content=body, headers=proto.signed_headers("gw1", KEY, body))
    assert r.status_code == 200 and r.json() == {"gatewayId": "gw1"}
    assert count(cloud_rt, s.gateway_outbox) == 1


def test_a_purge_the_cloud_holds_is_parked_and_a_gateway_lifts_only_its_own_holds(runtime, tenant, ris, cloud,
                                                                                   tmp_path):
    """A hold made at the cloud outlives the gateway's hold and lift of the same study, and refuses the gateway's
    purge (parked, with the reason) until it is lifted; replayed, the purge then applies once."""
    from yingyun.archive.retention import Purger, add_hold, due, holds, remove_hold, set_rule, tombstones
    from yingyun.gateway.outbox import SyncEvents, unforwarded

    cloud_rt, cloud_server = cloud
    spec = StudySpec(accession="A1")
    old = dict(STUDY, studyUid=spec.study_uid, inpatientNum="I1", studyDate="1990-01-01 08:00:00")
    assert ris.post("/ris/study/add", old)["code"] == 0
    store_instances(runtime, tmp_path, spec)
    worker = worker_for(runtime, cloud_server.url)
    events, queue = SyncEvents(SqlJobQueue(runtime.db)), SqlJobQueue(runtime.db)
    drain(worker)
    assert count(cloud_rt, s.instances) == 3

    add_hold(cloud_rt.db, study_uid=spec.study_uid, reason="the cloud's case")
    assert add_hold(runtime.db, study_uid=spec.study_uid, reason="the hospital's case", events=events)
    drain(worker)
    remove_hold(runtime.db, study_uid=spec.study_uid, events=events)
    drain(worker)
    with cloud_rt.db.read() as conn:
        assert [(h["reason"], h["origin"]) for h in holds(conn)] == [("the cloud's case", None)]

    set_rule(runtime.db, hospital_id="h1", outpatient_years=15, inpatient_years=30, other_years=None)
    with runtime.db.read() as conn:
        items = due(conn, now=time.time())
    assert len(Purger(runtime.db, runtime.blobs, unforwarded=unforwarded, events=events).purge_due(items)) == 1
    drain(worker)
    (job,) = queue.list(kind=KIND, states=["parked"])
    assert job.payload["kind"] == proto.PURGE and "legal hold at the cloud" in job.last_error
    assert count(cloud_rt, s.studies) == 1 and count(cloud_rt, s.instances) == 3

    remove_hold(cloud_rt.db, study_uid=spec.study_uid)
    assert queue.replay(kind=KIND, now=time.time(), pk=job.pk) == 1
    drain(worker)
    assert sync_status(runtime.db)["parked"] == 0
    assert count(cloud_rt, s.studies) == 0 and count(cloud_rt, s.instances) == 0
    with cloud_rt.db.read() as conn:
        assert [(t["studyId"], t["reason"], t["rule"]) for t in tombstones(conn)] == \
            [("S1", "retention", "inpatient-years=30 (gateway gw1)")]
    worker.client.close()
