"""The reading loop over HTTP: worklist, lock, draft, submit, return, resubmit, approve, amend; and the final
report everywhere (the `reports` table the patient pages and the partner API read, a status callback queued)."""

from __future__ import annotations

from sqlalchemy import select

from yingyun.cloud.patient.study import latest_report
from yingyun.contract.codes import Code
from yingyun.storage import schema as s

from .conftest import code, ok


def callbacks(world) -> list[dict]:
    import orjson

    with world.runtime.db.read() as conn:
        rows = conn.execute(select(s.jobs.c.payload).where(s.jobs.c.kind == "callback").order_by(s.jobs.c.pk))
        return [orjson.loads(r.payload) if isinstance(r.payload, (str, bytes)) else r.payload for r in rows]


def test_a_study_is_read_returned_fixed_and_approved(world) -> None:
    uid = world.study("S1")
    rad, rev = world.sign_in("rad"), world.sign_in("rev")
    page = ok(rad.get("/api/v1/worklist"))
    assert page["total"] == 1 and page["counts"]["unread"] == 1
    item = page["items"][0]
    assert item["studyUid"] == uid and item["studyId"] == "S1" and item["accessNumber"] == "A-S1"
    assert item["hospitalId"] == "h1" and item["hospitalName"] == "第一医院" and item["patientName"] == "张三丰"
    assert item["modality"] == "CT" and item["state"] == "unread" and item["category"] == "normal"
    assert item["patientAge"] == "56岁" and item["priors"] == 0 and item["lockedBy"] is None
    assert code(rad.get(f"/api/v1/studies/{uid}/report")) == Code.REPORT_NOT_FOUND

    lock = ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    assert lock["lockedBy"] == "rad"
    drafting = ok(rad.get("/api/v1/worklist"))["items"][0]
    assert drafting["state"] == "drafting" and drafting["lockedBy"] == "王放射"
    v1 = ok(rad.put(f"/api/v1/studies/{uid}/report", json={"imageDescription": "右肺上叶结节。",
                                                             "conclusion": "右肺结节", "version": 0}))
    assert v1 == {"version": 1}
    ok(rad.post(f"/api/v1/studies/{uid}/report/submit"))
    report = ok(rev.get(f"/api/v1/studies/{uid}/report"))
    assert report["state"] == "submitted" and report["reportDoctor"] == "王放射" and report["reportTime"]
    assert ok(rev.get("/api/v1/worklist", params={"state": "submitted"}))["total"] == 1

    ok(rev.post(f"/api/v1/studies/{uid}/report/return", json={"comment": "请描述结节大小"}))
    returned = ok(rad.get(f"/api/v1/studies/{uid}/report"))
    assert returned["state"] == "returned" and returned["returnComment"] == "请描述结节大小"
    assert ok(rad.get("/api/v1/worklist"))["items"][0]["state"] == "returned"
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    v = ok(rad.put(f"/api/v1/studies/{uid}/report", json={"imageDescription": "右肺上叶结节，约8mm。",
                                                            "conclusion": "右肺结节", "version": returned["version"]}))
    ok(rad.post(f"/api/v1/studies/{uid}/report/submit"))
    assert v["version"] == returned["version"] + 1
    assert code(rad.post(f"/api/v1/studies/{uid}/report/approve")) == Code.NO_PERMISSION  # a radiologist

    before = len(callbacks(world))
    final = ok(rev.post(f"/api/v1/studies/{uid}/report/approve"))
    assert final["state"] == "final"
    report = ok(rev.get(f"/api/v1/studies/{uid}/report"))
    assert report["auditDoctor"] == "赵审核" and report["state"] == "final"
    assert [x["kind"] for x in report["revisions"]] == ["submitted", "returned", "submitted", "final"]

    # Everywhere: the study's report in `reports` (what the patient pages and the partner API read) ...
    with world.runtime.db.read() as conn:
        study = conn.execute(select(s.studies).where(s.studies.c.study_id == "S1")).one()
        kept = latest_report(conn, study)
    assert kept is not None and kept.conclusion == "右肺结节" and kept.audit_doctor == "赵审核"
    assert kept.report_doctor == "王放射" and kept.report_number == report["reportNumber"]
    # ... and the partners told: status 3 (report and images).
    queued = callbacks(world)[before:]
    assert [(c["appId"], c["status"], c["studyId"]) for c in queued] == [("ih", 3, "S1")]
    assert queued[0]["reportId"] == str(kept.pk)
    # The sending hospital's clinician reads it; never locks it.
    clin = world.sign_in("clin")
    assert ok(clin.get(f"/api/v1/studies/{uid}/report"))["conclusion"] == "右肺结节"
    assert code(clin.post(f"/api/v1/studies/{uid}/lock")) == Code.STUDY_NO_PERMISSION
    assert ok(rad.get("/api/v1/worklist"))["counts"]["final"] == 1


def test_an_amendment_keeps_the_final_report_shown_until_approved(world) -> None:
    uid = world.study("S2")
    rad, rev, clin = world.sign_in("rad"), world.sign_in("rev"), world.sign_in("clin")
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    ok(rad.put(f"/api/v1/studies/{uid}/report", json={"imageDescription": "所见", "conclusion": "初版",
                                                       "version": 0}))
    ok(rad.post(f"/api/v1/studies/{uid}/report/submit"))
    ok(rev.post(f"/api/v1/studies/{uid}/report/approve"))
    assert code(rad.put(f"/api/v1/studies/{uid}/report", json={"conclusion": "x", "version": 0})) == \
        Code.REPORT_EXISTS
    amend = ok(rad.post(f"/api/v1/studies/{uid}/report/amend"))
    assert amend["state"] == "amending"
    ok(rad.put(f"/api/v1/studies/{uid}/report", json={"imageDescription": "所见", "conclusion": "修订版",
                                                       "version": amend["version"]}))
    assert ok(clin.get(f"/api/v1/studies/{uid}/report"))["conclusion"] == "初版"
    with world.runtime.db.read() as conn:
        study = conn.execute(select(s.studies).where(s.studies.c.study_id == "S2")).one()
        assert latest_report(conn, study).conclusion == "初版"
    ok(rad.post(f"/api/v1/studies/{uid}/report/submit"))
    assert ok(clin.get(f"/api/v1/studies/{uid}/report"))["conclusion"] == "初版"
    ok(rev.post(f"/api/v1/studies/{uid}/report/approve"))
    shown = ok(clin.get(f"/api/v1/studies/{uid}/report"))
    assert shown["conclusion"] == "修订版" and [x["conclusion"] for x in shown["revisions"]] == ["初版", "修订版"]
    with world.runtime.db.read() as conn:
        study = conn.execute(select(s.studies).where(s.studies.c.study_id == "S2")).one()
        assert latest_report(conn, study).conclusion == "修订版"
        counts = conn.execute(select(s.reading_reports.c.amended_count, s.reading_reports.c.returned_count,
                                     s.reading_reports.c.first_final_at, s.reading_reports.c.first_submitted_at)).one()
    assert counts.amended_count == 1 and counts.returned_count == 0 and counts.first_final_at is not None
