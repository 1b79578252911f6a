"""A gateway's retention purge and legal holds reach the cloud over the sync link (issue 18 item 4).

Two real processes over loopback: the gateway purges a study and holds another while the cloud is down; once it
is back, the cloud purges the same study (exactly once, with its own tombstone), keeps the hold and its own
retention respects it, until the gateway lifts it.
"""

from __future__ import annotations

import json
import signal

from sqlalchemy import create_engine, func, select

from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, make_study
from ..support.net import free_port, wait_http
from .test_split import KEY, TOKEN, YINGYUN, Proc, admin, prepare, ris, storescu, study, sync_status, until


def test_gateway_purge_and_holds_propagate_to_the_cloud(tmp_path):
    cloud_dir, gw_dir = tmp_path / "cloud", tmp_path / "gateway"
    prepare(cloud_dir)
    prepare(gw_dir)
    admin(cloud_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(cloud_dir, "gateway", "add", "--id", "gw1", "--hospital", "h1", "--key", KEY)
    admin(gw_dir, "hospital", "add", "--id", "h1", "--name", "一院")
    admin(gw_dir, "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
    admin(gw_dir, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")

    cloud_port, gw_port, dicom_port = free_port(), free_port(), free_port()
    cloud_url, gw_url = f"http://127.0.0.1:{cloud_port}", f"http://127.0.0.1:{gw_port}"
    cloud = Proc([YINGYUN, "cloud", "--data-dir", str(cloud_dir), "--host", "127.0.0.1", "--http-port", str(cloud_port),
                  "--stable-seconds", "1"], tmp_path / "cloud.log").start()
    gateway = Proc([YINGYUN, "gateway", "--data-dir", str(gw_dir), "--host", "127.0.0.1", "--http-port", str(gw_port),
                    "--dicom-port", str(dicom_port), "--cloud-url", cloud_url, "--gateway-id", "gw1", "--gateway-key",
                    KEY, "--public-url", "https://film.example.test", "--dicom-workers", "1"],
                   tmp_path / "gw.log").start()
    wait_http(cloud_url)
    wait_http(gw_url)
    engine = create_engine(f"sqlite:///{cloud_dir / 'yingyun.db'}")

    def cloud_count(table, *where) -> int:
        with engine.connect() as c:
            return c.execute(select(func.count()).select_from(table).where(*where)).scalar()

    def cloud_holds() -> list[dict]:
        return json.loads(admin(cloud_dir, "hold", "list", "--json"))

    try:
        old, kept = StudySpec(accession="AP1"), StudySpec(accession="AP2")
        for study_id, spec in (("P1", old), ("P2", kept)):
            record = dict(study(study_id, spec.study_uid), inpatientNum="I" + study_id, studyDate="1990-01-01 08:00:00")
            assert ris(gw_url, "/ris/study/add", record)["code"] == 0
            assert storescu(dicom_port, make_study(tmp_path / study_id, spec, series=1, per_series=3)) == 0
        until(lambda: cloud_count(s.instances) == 6 and cloud_count(s.studies) == 2, what="first forward")
        cloud_blobs = [p for p in (cloud_dir / "blobs").rglob("*") if p.is_file()]
        assert cloud_blobs

        # The cloud is down while the gateway holds one study and purges the other: both wait in the outbox.
        cloud.kill()
        admin(gw_dir, "hold", "add", "--study-uid", kept.study_uid, "--reason", "case 2026-7")
        admin(gw_dir, "retention", "set", "--hospital", "h1", "--outpatient-years", "15", "--inpatient-years", "30")
        due = {r["studyId"]: r for r in json.loads(admin(gw_dir, "retention", "due", "--apply", "--json"))}
        assert due["P1"]["purged"] and not due["P2"]["purged"] and due["P2"]["held"]
        until(lambda: sync_status(gw_dir)["pending"]["records"] == 2, what="the purge and the hold queued")

        cloud.start()
        wait_http(cloud_url)
        until(lambda: sync_status(gw_dir)["pending"]["records"] == 0, what="drained")
        assert sync_status(gw_dir)["parked"] == 0
        until(lambda: cloud_count(s.studies) == 1, what="the purge at the cloud")
        assert cloud_count(s.instances, s.instances.c.study_uid == old.study_uid) == 0
        assert cloud_count(s.instances, s.instances.c.study_uid == kept.study_uid) == 3
        tombstones = json.loads(admin(cloud_dir, "retention", "purged", "--json"))
        assert [(t["studyId"], t["reason"], t["instances"]) for t in tombstones] == [("P1", "retention", 3)]
        assert "gateway gw1" in tombstones[0]["rule"]
        assert len([p for p in cloud_blobs if p.exists()]) == 3  # the purged study's files are gone
        assert [(h["studyUid"], h["reason"], h["origin"]) for h in cloud_holds()] == \
            [(kept.study_uid, "case 2026-7", "gw1")]

        # The cloud's own retention respects the gateway's hold ...
        admin(cloud_dir, "retention", "set", "--hospital", "h1", "--outpatient-years", "15", "--inpatient-years", "30")
        due = json.loads(admin(cloud_dir, "retention", "due", "--apply", "--json"))
        assert [(r["studyId"], r["held"], r["purged"]) for r in due] == [("P2", True, False)]
        assert cloud_count(s.studies) == 1

        # ... until the gateway lifts it.
        admin(gw_dir, "hold", "remove", "--study-uid", kept.study_uid)
        until(lambda: not cloud_holds(), what="the hold lifted at the cloud")
        due = json.loads(admin(cloud_dir, "retention", "due", "--apply", "--json"))
        assert [(r["studyId"], r["purged"]) for r in due] == [("P2", True)]
        assert cloud_count(s.studies) == 0 and cloud_count(s.instances) == 0
        assert len(json.loads(admin(cloud_dir, "retention", "purged", "--json"))) == 2  # each purge once
    finally:
        engine.dispose()
        for p in (gateway, cloud):
            try:
                p.kill(signal.SIGTERM)
            except (ProcessLookupError, AttributeError):
                pass
