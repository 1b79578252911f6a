"""Retention and purge (issue 18 item 4): deleted studies purged after their days, rules per patient class
with a dry run and --apply, legal holds that nothing purges, tombstones kept."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import func, select

from yingyun.archive.retention import DAY, Purger, add_hold, due, set_rule, tombstones
from yingyun.dicomnet.status import Status
from yingyun.storage import schema as s

from ..support.dicom_data import uid
from ..support.dicom_peers import dataset_bytes, make_instance

YINGYUN = str(Path(sys.executable).parent / "yingyun")
SUCCESS = {"code": 0}


def _study(runtime, ris, tmp_path: Path, study_id: str, *, images: int = 2, **extra: str) -> tuple[str, list[str]]:
    """A RIS study with its images; returns its UID and blob keys."""
    study_uid = uid()
    body = {"patientId": f"P-{study_id}", "patientName": "张三", "patientSex": "M", "studyId": study_id,
            "accessNumber": f"A-{study_id}", "modality": "CT", "studyUid": study_uid, **extra}
    assert ris.post("/ris/study/add", body)["code"] == 0
    assert ris.post("/ris/report/add", {"studyId": study_id, "accessNumber": f"A-{study_id}",
                                        "reportNumber": f"R-{study_id}", "imageDescription": "所见",
                                        "conclusion": "结论"})["code"] == 0
    assert ris.post("/ris/getStudyQR", {"studyId": study_id})["code"] == 0
    series_uid = uid()
    for i in range(images):
        path = tmp_path / f"{study_id}-{i}.dcm"
        make_instance(path, index=i, study_uid=study_uid, series_uid=series_uid)
        result = runtime.instances.store(hospital_id="h1", data=dataset_bytes(path),
                                         transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == Status.SUCCESS, result
    with runtime.db.read() as conn:
        keys = list(conn.execute(select(s.instances.c.blob_key).where(s.instances.c.study_uid == study_uid)).scalars())
    return study_uid, keys


def _delete(ris, study_id: str, study_uid: str) -> None:
    assert ris.post("/ris/study/delete", {"patientId": f"P-{study_id}", "studyId": study_id,
                                          "accessNumber": f"A-{study_id}", "studyUid": study_uid})["code"] == 0


def _rows_of(runtime, study_id: str, study_uid: str) -> dict[str, int]:
    counts = {}
    with runtime.db.read() as conn:
        for name, table, cond in (
            ("studies", s.studies, s.studies.c.study_id == study_id),
            ("reports", s.reports, s.reports.c.study_id == study_id),
            ("links", s.links, s.links.c.study_id == study_id),
            ("dicom_studies", s.dicom_studies, s.dicom_studies.c.study_uid == study_uid),
            ("series", s.series, s.series.c.study_uid == study_uid),
            ("instances", s.instances, s.instances.c.study_uid == study_uid),
        ):
            counts[name] = conn.execute(select(func.count()).select_from(table).where(cond)).scalar_one()
    return counts


def test_deleted_studies_are_purged_after_their_days_but_not_when_held(runtime, ris, tmp_path) -> None:
    gone_uid, gone_keys = _study(runtime, ris, tmp_path, "S-GONE")
    held_uid, held_keys = _study(runtime, ris, tmp_path, "S-HELD")
    kept_uid, kept_keys = _study(runtime, ris, tmp_path, "S-KEPT")  # not deleted
    for study_id, study_uid in (("S-GONE", gone_uid), ("S-HELD", held_uid)):
        _delete(ris, study_id, study_uid)
    assert add_hold(runtime.db, study_uid=held_uid, reason="诉讼 2026-17")

    early = Purger(runtime.db, runtime.blobs, now=lambda: time.time() + 29 * DAY)
    assert early.purge_deleted(days=30) == []
    cleared = []
    later = Purger(runtime.db, runtime.blobs, now=lambda: time.time() + 31 * DAY,
                   clear_render_cache=lambda: cleared.append(True))
    purged = later.purge_deleted(days=30)
    assert [(p.study_id, p.instances) for p in purged] == [("S-GONE", 2)]
    assert cleared == [True]

    assert set(_rows_of(runtime, "S-GONE", gone_uid).values()) == {0}
    assert not any(runtime.blobs.exists(k) for k in gone_keys)
    for study_id, study_uid, keys in (("S-HELD", held_uid, held_keys), ("S-KEPT", kept_uid, kept_keys)):
        assert _rows_of(runtime, study_id, study_uid) == {"studies": 1, "reports": 1, "links": 1,
                                                          "dicom_studies": 1, "series": 1, "instances": 2}
        assert all(runtime.blobs.exists(k) for k in keys)
    with runtime.db.read() as conn:
        (stone,) = tombstones(conn)
    assert stone["studyId"] == "S-GONE" and stone["studyUid"] == gone_uid and stone["reason"] == "deleted"
    assert stone["rule"] == "purge-deleted-days=30" and stone["deletedAt"] is not None and stone["instances"] == 2


def test_the_rule_counts_years_by_patient_class(runtime, tenant) -> None:
    set_rule(runtime.db, hospital_id="h1", outpatient_years=15, inpatient_years=30, other_years=None)
    now = time.mktime((2026, 12, 1, 0, 0, 0, 0, 0, 0))
    rows = [("OUT-OLD", "2011-11-30 10:00:00", {"clinicNum": "C1"}),  # 15 years and a day: due
            ("OUT-NEW", "2011-12-02 10:00:00", {"clinicNum": "C2"}),
            ("IN-OLD", "1996-11-01 08:00:00", {"inpatientNum": "I1", "clinicNum": "C3"}),  # inpatient wins
            ("IN-NEW", "2000-01-01 08:00:00", {"inpatientNum": "I2"}),
            ("OTHER", "1980-01-01 08:00:00", {"healthScreenNum": "H1"})]  # no years for others: kept
    with runtime.db.write() as conn:
        for study_id, date, details in rows:
            conn.execute(s.studies.insert().values(hospital_id="h1", study_id=study_id, study_date=date,
                                                   details=json.dumps(details), created_at=now, updated_at=now))
    with runtime.db.read() as conn:
        listed = {d.study_id: d.patient_class for d in due(conn, now=now)}
    assert listed == {"OUT-OLD": "outpatient", "IN-OLD": "inpatient"}
    set_rule(runtime.db, hospital_id="h1", outpatient_years=15, inpatient_years=30, other_years=40)
    with runtime.db.read() as conn:
        assert {d.study_id for d in due(conn, now=now)} == {"OUT-OLD", "IN-OLD", "OTHER"}


def _admin(runtime, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([YINGYUN, "admin", "--data-dir", str(runtime.settings.data_dir), "--database-url",
                           runtime.settings.database_url, *args], capture_output=True, text=True, timeout=120)


def test_retention_due_is_a_dry_run_until_apply_and_spares_holds(runtime, ris, tmp_path) -> None:
    old_uid, old_keys = _study(runtime, ris, tmp_path, "S-OLD", clinicNum="C1", studyDate="2001-03-04 09:00:00")
    held_uid, held_keys = _study(runtime, ris, tmp_path, "S-OLD-HELD", clinicNum="C2",
                                 studyDate="2001-03-04 09:00:00")
    new_uid, _ = _study(runtime, ris, tmp_path, "S-NEW", clinicNum="C3", studyDate="2020-03-04 09:00:00")
    done = _admin(runtime, "retention", "set", "--hospital", "h1", "--outpatient-years", "15",
                  "--inpatient-years", "30")
    assert done.returncode == 0, done.stderr
    done = _admin(runtime, "hold", "add", "--study-uid", held_uid, "--reason", "court order 17")
    assert done.returncode == 0, done.stderr

    dry = _admin(runtime, "retention", "due", "--json")
    assert dry.returncode == 0, dry.stderr
    listed = {r["studyId"]: r["held"] for r in json.loads(dry.stdout)}
    assert listed == {"S-OLD": False, "S-OLD-HELD": True}
    assert _rows_of(runtime, "S-OLD", old_uid)["instances"] == 2  # a dry run changes nothing

    applied = _admin(runtime, "retention", "due", "--apply", "--json")
    assert applied.returncode == 0, applied.stderr
    assert {r["studyId"]: r["purged"] for r in json.loads(applied.stdout)} == {"S-OLD": True, "S-OLD-HELD": False}
    assert set(_rows_of(runtime, "S-OLD", old_uid).values()) == {0}
    assert not any(runtime.blobs.exists(k) for k in old_keys)
    assert _rows_of(runtime, "S-OLD-HELD", held_uid)["instances"] == 2 and all(map(runtime.blobs.exists, held_keys))
    assert _rows_of(runtime, "S-NEW", new_uid)["instances"] == 2

    purged = json.loads(_admin(runtime, "retention", "purged", "--json").stdout)
    assert [(r["studyId"], r["reason"], r["rule"]) for r in purged] == [("S-OLD", "retention", "outpatient-years=15")]
    holds = json.loads(_admin(runtime, "hold", "list", "--json").stdout)
    assert [(h["studyUid"], h["reason"]) for h in holds] == [(held_uid, "court order 17")]
    assert _admin(runtime, "hold", "remove", "--study-uid", held_uid).returncode == 0
    again = _admin(runtime, "hold", "remove", "--study-uid", held_uid)
    assert again.returncode == 1 and "no legal hold" in again.stderr


def test_a_rule_for_an_unknown_hospital_or_of_no_years_is_refused(runtime, tenant) -> None:
    done = _admin(runtime, "retention", "set", "--hospital", "h9", "--outpatient-years", "15", "--inpatient-years",
                  "30")
    assert done.returncode == 1 and "no hospital 'h9'" in done.stderr
    done = _admin(runtime, "retention", "set", "--hospital", "h1", "--outpatient-years", "0", "--inpatient-years",
                  "30")
    assert done.returncode == 1 and "--outpatient-years" in done.stderr
    with runtime.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.retention_rules)).scalar_one() == 0


def test_images_with_no_ris_record_are_kept_by_the_other_years(runtime, tenant, tmp_path) -> None:
    study_uid, series_uid = uid(), uid()
    for i in range(2):
        path = tmp_path / f"alone-{i}.dcm"
        make_instance(path, index=i, study_uid=study_uid, series_uid=series_uid)
        result = runtime.instances.store(hospital_id="h1", data=dataset_bytes(path),
                                         transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == Status.SUCCESS, result
    with runtime.db.write() as conn:
        conn.execute(s.dicom_studies.update().values(study_date="19800101"))
        keys = list(conn.execute(select(s.instances.c.blob_key)).scalars())
    set_rule(runtime.db, hospital_id="h1", outpatient_years=15, inpatient_years=30, other_years=None)
    with runtime.db.read() as conn:
        assert due(conn, now=time.time()) == []  # no years for the other class: kept
    set_rule(runtime.db, hospital_id="h1", outpatient_years=15, inpatient_years=30, other_years=40)
    with runtime.db.read() as conn:
        (item,) = due(conn, now=time.time())
    assert (item.study_id, item.study_uid, item.patient_class) == (None, study_uid, "other")
    purged = Purger(runtime.db, runtime.blobs).purge_due([item])
    assert [(p.study_uid, p.instances) for p in purged] == [(study_uid, 2)]
    assert _rows_of(runtime, "-", study_uid) == {"studies": 0, "reports": 0, "links": 0, "dicom_studies": 0,
                                                 "series": 0, "instances": 0}
    assert not any(runtime.blobs.exists(k) for k in keys)
    with runtime.db.read() as conn:
        assert [(t["studyId"], t["studyUid"], t["rule"]) for t in tombstones(conn)] == [
            (None, study_uid, "other-years=40")]


def test_a_gateway_purges_nothing_the_cloud_has_yet_to_get(runtime, ris, tmp_path) -> None:
    from yingyun.gateway.outbox import KIND, unforwarded
    from yingyun.storage.queue import DELIVERED, SqlJobQueue

    study_uid, keys = _study(runtime, ris, tmp_path, "S-QUEUED")
    _delete(ris, "S-QUEUED", study_uid)
    queue = SqlJobQueue(runtime.db)
    with runtime.db.write() as conn:  # as the gateway's outbox queues them: the delete record, an instance
        queue.enqueue(conn, kind=KIND, payload={"kind": "delete", "versionPk": 1}, order_key="h1/S-QUEUED")
        queue.enqueue(conn, kind=KIND, payload={"kind": "instance", "blobKey": keys[0], "size": 1, "sopUid": "x"})
    purger = Purger(runtime.db, runtime.blobs, unforwarded=unforwarded, now=lambda: time.time() + 31 * DAY)
    assert purger.purge_deleted(days=30) == []
    assert _rows_of(runtime, "S-QUEUED", study_uid)["instances"] == 2
    with runtime.db.write() as conn:
        conn.execute(s.jobs.update().where(s.jobs.c.order_key == "h1/S-QUEUED").values(state=DELIVERED))
    assert purger.purge_deleted(days=30) == []  # the instance is still on its way
    with runtime.db.write() as conn:
        conn.execute(s.jobs.update().values(state=DELIVERED))
    assert [p.study_id for p in purger.purge_deleted(days=30)] == ["S-QUEUED"]
