"""Two cloud processes behind one PostgreSQL and one S3 bucket (real processes, loopback).

Requirement: several `yingyun cloud` processes behind one database and one
bucket work together: queue work is claimed with SELECT … FOR UPDATE SKIP
LOCKED, every node has the same YINGYUN_DATA_KEY / YINGYUN_HASH_KEY, and
migrations run under a lock.

Both clouds start at the same moment on a fresh database (and `yingyun db
upgrade` migrates alongside them). A gateway forwards to cloud A; A is
SIGKILLed while it takes a C-STORE storm; the gateway comes back pointing at
cloud B, which takes the rest. Afterwards every study, report and instance
is in the database exactly once, B serves every instance from the shared
bucket (those A stored included), and the partner got each status callback
exactly once although both clouds ran a dispatcher and a stability sweep on
the same queue.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pydicom
import pytest
from sqlalchemy import create_engine, func, select, text

from yingyun.storage import schema as s
from yingyun.storage.queue import DELIVERED
from yingyun.storage.schema import jobs

from ..cloud.hospital_api.conftest import IH_TOKEN, Receiver
from ..support.dicom_data import StudySpec, make, uid
from ..support.net import free_port
from ..support.s3 import s3_client, use_emulator
from ..support.net import wait_http
from .test_split import KEY, YINGYUN, Proc, ris, study, sync_status

pytestmark = pytest.mark.postgres

PREFIX = "archive"
CALLBACK = "callback"


def run(*args: str) -> str:
    """A `yingyun` command run to completion (it inherits the test's environment: keys, AWS_*)."""
    done = subprocess.run([YINGYUN, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def poll(fn, *, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def images(folder: Path, spec: StudySpec, *, series: int, per_series: int) -> list[Path]:
    """Instances big enough (32 KiB of pixels) that forwarding a storm takes a moment."""
    out = []
    for n in range(series):
        series_uid = uid()
        for i in range(per_series):
            out.append(make(folder / f"s{n}_i{i}.dcm", spec, series_uid=series_uid, number=i + 1, series_number=n + 1,
                            rows=128, cols=128))
    return out


def storescu_cmd(port: int, files) -> list[str]:
    return ["/usr/bin/storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(port), *map(str, files)]


def dataset_bytes(path: Path) -> bytes:
    from yingyun.core.dicom import read_file_info

    raw = path.read_bytes()
    return raw[read_file_info(raw).dataset_offset:]


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from yingyun.storage.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def no_tracebacks(log: Path) -> None:
    content = log.read_text(errors="replace") if log.exists() else ""
    assert "Traceback" not in content, f"{log.name}:\n{content[-4000:]}"


def test_two_clouds_share_database_bucket_and_queues(tmp_path, pg_server, monkeypatch):
    t_start = time.monotonic()
    db_url = pg_server.create_database()
    pg_log = pg_server.root / "log"
    pg_log_from = len(pg_log.read_text(errors="replace"))
    bucket = "yy-two-clouds-" + os.urandom(4).hex()
    s3 = s3_client()
    s3.create_bucket(Bucket=bucket)
    # Every process (clouds, gateway, admin commands) inherits one environment:
    # the same keys everywhere, the bucket's endpoint and credentials.
    for name in [k for k in os.environ if k.startswith(("YINGYUN_", "AWS_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("YINGYUN_DATA_KEY", os.urandom(32).hex())
    monkeypatch.setenv("YINGYUN_HASH_KEY", os.urandom(32).hex())
    use_emulator(monkeypatch, tmp_path)
    receiver = Receiver("ih", IH_TOKEN).up()
    ports = {"A": free_port(), "B": free_port()}
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    clouds = {n: Proc([YINGYUN, "cloud", "--data-dir", str(tmp_path / f"cloud-{n}"), "--database-url", db_url,
                       "--blob-url", f"s3://{bucket}/{PREFIX}", "--host", "127.0.0.1", "--http-port", str(port),
                       "--public-url", urls[n], "--stable-seconds", "1", "--callback-timeout", "5"],
                      tmp_path / f"cloud-{n}.log")
              for n, port in ports.items()}
    gw_dir = tmp_path / "gateway"
    gw_port, dicom_port = free_port(), free_port()
    gw_url = f"http://127.0.0.1:{gw_port}"

    def gateway_to(cloud: str) -> Proc:
        return Proc([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port", str(gw_port),
                     "--dicom-port", str(dicom_port), "--cloud-url", urls[cloud], "--gateway-id", "gw1",
                     "--gateway-key", KEY, "--public-url", "https://film.example.test", "--dicom-workers", "1"],
                    tmp_path / f"gateway-{cloud}.log")

    gateway: Proc | None = None
    engine = create_engine(db_url)

    def scalar(q):
        with engine.connect() as c:
            return c.execute(q).scalar()

    def count(table, *where) -> int:
        return scalar(select(func.count()).select_from(table).where(*where))

    def callback_jobs() -> list:
        with engine.connect() as c:
            return c.execute(select(jobs).where(jobs.c.kind == CALLBACK).order_by(jobs.c.pk)).all()

    def last_status(study_id: str) -> int | None:
        """The status of the study's newest callback once every callback is delivered."""
        rows = callback_jobs()
        if not rows or any(r.state != DELIVERED for r in rows):
            return None
        mine = [p for p in (orjson.loads(r.payload) for r in rows) if p["studyId"] == study_id]
        return mine[-1]["status"] if mine else None

    try:
        # -- both clouds at once on the fresh database: both race to migrate ------------
        for p in clouds.values():
            p.start()
        # `db upgrade` migrates too (the third racer); then the admin commands register the tenant.
        run("db", "upgrade", "--database-url", db_url)
        run("admin", "hospital", "add", "--id", "h1", "--name", "一院", "--database-url", db_url)
        assert "added" in run("admin", "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY,
                              "--database-url", db_url)
        run("admin", "partner", "add", "--app-id", "ih", "--token", IH_TOKEN, "--hospital", "h1",
            "--callback-url", receiver.url, "--database-url", db_url)
        bearer = re.search(r"token: (\S+)", run("admin", "token", "add", "--name", "ops", "--all-hospitals",
                                                 "--database-url", db_url)).group(1)
        # The gateway's own registry (SQLite in its data dir).
        run("db", "upgrade", "--data-dir", str(gw_dir))
        run("admin", "hospital", "add", "--id", "h1", "--name", "一院", "--data-dir", str(gw_dir))
        run("admin", "partner", "add", "--app-id", "ris1", "--token", "t" * 32, "--hospital", "h1",
            "--data-dir", str(gw_dir))
        run("admin", "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1",
            "--data-dir", str(gw_dir))
        for n in clouds:
            wait_http(urls[n], timeout=30)
        assert all(p.p.poll() is None for p in clouds.values())
        with engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]

        gateway = gateway_to("A").start()
        wait_http(gw_url, timeout=30)  # healthy: its DICOM port serves associations too

        # -- phase 1: through cloud A while both clouds run dispatchers and sweeps -------
        s1, s2 = StudySpec(accession="AS1", patient_id="PS1"), StudySpec(accession="AS2", patient_id="PS2")
        assert ris(gw_url, "/ris/study/add", study("S1", s1.study_uid))["code"] == 0
        assert ris(gw_url, "/ris/report/add", {"reportNumber": "R1", "studyId": "S1", "accessNumber": "AS1",
                                               "imageDescription": "所见", "conclusion": "结论"})["code"] == 0
        files1 = images(tmp_path / "d1", s1, series=2, per_series=4)
        assert subprocess.run(storescu_cmd(dicom_port, files1), capture_output=True, timeout=60).returncode == 0
        poll(lambda: count(s.instances) == 8 and count(s.reports) == 1, timeout=20, what="S1 at the cloud")
        # S1's callbacks (study, report, images stable -> 3) all out before A goes down.
        poll(lambda: last_status("S1") == 3, timeout=20, what="S1's callbacks")

        # -- phase 2: A is SIGKILLed while it takes a C-STORE storm ------------------------
        part1 = images(tmp_path / "d2a", s2, series=2, per_series=20)
        storm = subprocess.Popen(storescu_cmd(dicom_port, part1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            poll(lambda: count(s.instances, s.instances.c.study_uid == s2.study_uid) > 0, timeout=20,
                 what="the storm reaching cloud A", every=0.02)
            storm_running = storm.poll() is None
            clouds["A"].kill()
            t_kill = time.time()
            assert storm.wait(timeout=60) == 0  # the hospital keeps working: the gateway spools
        finally:
            if storm.poll() is None:
                storm.kill()
        via_a_at_kill = count(s.instances, s.instances.c.study_uid == s2.study_uid)
        waiting_at_gateway = sync_status(gw_dir)["pending"]["instances"]  # the storm's rest, spooled

        # -- phase 3: the gateway comes back pointing at cloud B ---------------------------
        gateway.kill(signal.SIGTERM)
        t_switch = time.time()
        gateway = gateway_to("B").start()
        wait_http(gw_url, timeout=30)  # healthy: its DICOM port serves associations too
        assert ris(gw_url, "/ris/study/add", study("S2", s2.study_uid))["code"] == 0
        assert ris(gw_url, "/ris/report/add", {"reportNumber": "R2", "studyId": "S2", "accessNumber": "AS2",
                                               "imageDescription": "所见", "conclusion": "结论"})["code"] == 0
        part2 = images(tmp_path / "d2b", s2, series=1, per_series=8)
        assert subprocess.run(storescu_cmd(dicom_port, part2), capture_output=True, timeout=60).returncode == 0
        sent = files1 + part1 + part2
        poll(lambda: sync_status(gw_dir)["pending"] == {"records": 0, "instances": 0, "bytes": 0}, timeout=30,
             what="the gateway's outbox drained into cloud B")
        assert sync_status(gw_dir)["parked"] == 0
        poll(lambda: last_status("S2") == 3, timeout=20, what="S2's callbacks")
        poll(lambda: len(receiver.attempts) >= len(callback_jobs()), timeout=10, what="the receiver's tally")

        # -- every record and instance in the shared database exactly once ----------------
        with engine.connect() as c:
            studies = c.execute(select(s.studies.c.study_id, s.studies.c.pk)).all()
            assert sorted(r.study_id for r in studies) == ["S1", "S2"]
            assert c.execute(select(func.count()).select_from(s.study_versions)).scalar() == 2  # one add each
            assert sorted(c.execute(select(s.reports.c.report_number)).scalars()) == ["R1", "R2"]
            assert c.execute(select(func.count()).select_from(s.report_versions)).scalar() == 2
            rows = c.execute(select(s.instances)).all()
            applied = Counter(c.execute(select(s.sync_applied.c.kind)).scalars())
            dstudies = {r.study_uid: r for r in c.execute(select(s.dicom_studies))}
        sop_of = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in sent}
        assert len(rows) == len(sent) == 8 + 40 + 8
        assert Counter(r.sop_uid for r in rows) == Counter(list(sop_of))  # each exactly once
        assert all(r.version == 1 for r in rows)
        assert applied["study"] == 2 and applied["report"] == 2  # each gateway record applied once, by A or B
        assert {u: (d.n_images, d.stable) for u, d in dstudies.items()} == {s1.study_uid: (8, True),
                                                                           s2.study_uid: (48, True)}
        # Who stored what: A until it was killed, B once the gateway pointed at it; nobody in between.
        by_a = [r for r in rows if r.received_at < t_kill]
        by_b = [r for r in rows if r.received_at > t_switch]
        assert len(by_a) + len(by_b) == len(rows)
        assert len(by_a) >= 8 + 1 and len(by_b) >= 8
        assert via_a_at_kill >= 1

        # -- B serves every instance from the shared bucket, A's included ------------------
        dw = urls["B"] + "/dicomweb"
        auth = {"Authorization": f"Bearer {bearer}"}
        with httpx.Client(timeout=30, headers=auth) as http:
            listed = http.get(dw + "/studies", headers={"Accept": "application/dicom+json"})
            assert listed.status_code == 200
            assert sorted(int(x["00201208"]["Value"][0]) for x in listed.json()) == [8, 48]
            for r in rows:
                got = http.get(f"{dw}/studies/{r.study_uid}/series/{r.series_uid}/instances/{r.sop_uid}",
                               headers={"Accept": "application/dicom"})
                assert got.status_code == 200, (r.sop_uid, got.status_code, got.text[:200])
                stored = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{r.blob_key}")["Body"].read()
                assert got.content == stored
                assert got.content.endswith(dataset_bytes(sop_of[r.sop_uid]))  # what the modality sent
            assert http.get(dw + "/studies", headers={"Accept": "application/dicom+json"},
                            params={"StudyInstanceUID": s2.study_uid}).json()[0]["00201208"]["Value"] == [48]

        # -- each status callback reached the partner exactly once -------------------------
        cb_rows = callback_jobs()
        assert all(r.state == DELIVERED for r in cb_rows)
        assert [r.attempts for r in cb_rows] == [1] * len(cb_rows)  # claimed once, by one of the two dispatchers
        assert receiver.rejected == []  # signed with the partner token both nodes decrypt with the shared key
        deliveries = Counter(receiver.attempts)
        assert deliveries == Counter({r.event_id: 1 for r in cb_rows}), deliveries
        assert Counter(d.event_id for d in receiver.received) == deliveries
        # One "images stable" callback per study and stable generation: the two sweeps never both fired.
        causes = [(p["studyId"], p["cause"]) for p in (orjson.loads(r.payload) for r in cb_rows)
                  if p["cause"].startswith("images stable")]
        assert len(causes) == len(set(causes))
        by_study: dict[str, list[int]] = {}
        for d in receiver.received:
            by_study.setdefault(d.body["studyId"], []).append(d.body["status"])
        assert set(by_study) == {"S1", "S2"} and by_study["S1"][-1] == 3 and by_study["S2"][-1] == 3
        assert all(d.identity["phoneNum"] == "13800138000" for d in receiver.received)

        assert clouds["B"].p.poll() is None
        for log in ["cloud-A", "cloud-B", "gateway-A", "gateway-B"]:
            no_tracebacks(tmp_path / f"{log}.log")
        sent_by = {n: (tmp_path / f"cloud-{n}.log").read_text().count(receiver.url) for n in clouds}  # httpx's log
        # Nothing went wrong in the database meanwhile (no deadlock, no failed statement).
        pg_errors = [line for line in pg_log.read_text(errors="replace")[pg_log_from:].splitlines()
                     if "ERROR" in line or "deadlock" in line]
        assert pg_errors == []
        print(f"two clouds: {len(by_a)} instances via A ({via_a_at_kill} of the storm when A was killed, storm "
              f"{'still running' if storm_running else 'over'}, {waiting_at_gateway} waiting at the gateway), "
              f"{len(by_b)} via B; callbacks {by_study}, sent by {sent_by}; {time.monotonic() - t_start:.1f} s")
    finally:
        engine.dispose()
        for p in [gateway, *clouds.values()]:
            if p is not None and p.p is not None:
                try:  # the whole process group: the gateway's receiver processes too
                    p.kill(signal.SIGKILL)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        receiver.down()
