"""The worklist's order, filters and counts; a patient's priors in the union; critical findings."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from yingyun.contract.codes import Code
from yingyun.storage import schema as s

from .conftest import code, ok


def test_emergencies_first_then_the_longest_waiting_and_the_filters(world) -> None:
    old = world.study("W1", id_card=None, phone=None)
    world.clock.advance(600)
    newer = world.study("W2", id_card=None, phone=None, modality="MR", name="李四")
    urgent = world.study("W3", id_card=None, phone=None, category="emergency")
    images_only = world.study("W4", ris=False)  # no RIS record: read from what DICOM says
    rad = world.sign_in("rad")
    page = ok(rad.get("/api/v1/worklist"))
    assert [i["studyUid"] for i in page["items"]] == [urgent, old, newer, images_only]
    assert page["items"][0]["category"] == "emergency"
    assert page["items"][3]["studyId"] is None and page["items"][3]["patientName"] == "Test^Patient"
    assert page["total"] == 4 and page["counts"] == {"unread": 4, "drafting": 0, "submitted": 0, "returned": 0,
                                                     "final": 0}
    assert [i["studyUid"] for i in ok(rad.get("/api/v1/worklist", params={"modality": "MR"}))["items"]] == [newer]
    assert [i["studyUid"] for i in ok(rad.get("/api/v1/worklist", params={"q": "李四"}))["items"]] == [newer]
    assert [i["studyUid"] for i in ok(rad.get("/api/v1/worklist", params={"q": "A-W1"}))["items"]] == [old]
    two = ok(rad.get("/api/v1/worklist", params={"limit": 2, "offset": 1}))
    assert [i["studyUid"] for i in two["items"]] == [old, newer] and two["total"] == 4
    ok(rad.post(f"/api/v1/studies/{old}/lock"))
    locked = ok(rad.get("/api/v1/worklist", params={"state": "drafting"}))
    assert [i["studyUid"] for i in locked["items"]] == [old] and locked["counts"]["unread"] == 3
    assert ok(rad.get("/api/v1/worklist", params={"hospitalId": "h3"}))["total"] == 0
    assert ok(rad.get("/api/v1/worklist", params={"from": "2030-01-01"}))["total"] == 0
    for bad in ({"state": "lost"}, {"limit": "ten"}, {"limit": "0"}, {"from": "2026/11/20"}):
        assert code(rad.get("/api/v1/worklist", params=bad)) == Code.INVALID_FORMAT, bad
    with world.runtime.db.read() as conn:
        audited = conn.execute(select(s.staff_audit.c.detail).where(s.staff_audit.c.action == "reading.worklist")
                               ).scalars().all()
    assert audited and all("张" not in d and "李四" not in d for d in audited)  # counts, never names


def test_priors_are_the_patients_other_studies_in_the_union_with_their_reports(world) -> None:
    first = world.study("P1")
    rad, rev = world.sign_in("rad"), world.sign_in("rev")
    ok(rad.post(f"/api/v1/studies/{first}/lock"))
    ok(rad.put(f"/api/v1/studies/{first}/report", json={"imageDescription": "所见", "conclusion": "旧结论",
                                                         "version": 0}))
    ok(rad.post(f"/api/v1/studies/{first}/report/submit"))
    ok(rev.post(f"/api/v1/studies/{first}/report/approve"))
    second = world.study("P2")
    world.study("X1", id_card="110105194912310038", phone="13900000000")  # someone else
    outside = world.study("Z9", hospital="h9")  # the same patient outside the union
    del outside
    item = next(i for i in ok(rad.get("/api/v1/worklist"))["items"] if i["studyUid"] == second)
    assert item["priors"] == 1
    priors = ok(rad.get(f"/api/v1/studies/{second}/priors"))["items"]
    assert [(p["studyUid"], p["report"]["conclusion"]) for p in priors] == [(first, "旧结论")]


def test_a_critical_finding_is_told_at_once_and_listed_in_scope(world) -> None:
    uid = world.study("C1")
    rad = world.sign_in("rad")
    ok(rad.post(f"/api/v1/studies/{uid}/lock"))
    ok(rad.put(f"/api/v1/studies/{uid}/report", json={"imageDescription": "大量积液", "conclusion": "心包填塞",
                                                       "critical": True, "version": 0}))
    ok(rad.post(f"/api/v1/studies/{uid}/report/submit"))
    with world.runtime.db.read() as conn:
        jobs = [orjson.loads(p) if isinstance(p, (str, bytes)) else p for p in conn.execute(
            select(s.jobs.c.payload).where(s.jobs.c.kind == "callback").order_by(s.jobs.c.pk)).scalars()]
    critical = [j for j in jobs if j.get("critical")]
    assert [(j["appId"], j["status"], j["studyId"]) for j in critical] == [("ih", 1, "C1")]
    found = ok(world.sign_in("op").get("/api/v1/critical-findings"))["items"]
    assert [(f["studyUid"], f["hospitalId"], f["centreId"], f["reportedBy"]) for f in found] == [
        (uid, "h1", "h2", "rad")]
    assert len(ok(world.sign_in("clin").get("/api/v1/critical-findings"))["items"]) == 1  # its hospital's
    assert ok(world.sign_in("rad9").get("/api/v1/critical-findings"))["items"] == []


def test_the_callback_body_says_critical() -> None:
    from yingyun.contract import callbacks as cb

    common = {"status": 1, "phone": None, "id_card": None, "token": "t" * 32, "patient_id": "P", "hospital_id": "h1",
              "his_id": None, "study_type": 1, "study_date": "", "study_id": "S", "body_part": None, "study_name": None,
              "h5_url": "", "h5_detail_url": "", "report_id": ""}
    assert cb.body(**common, critical=True)["critical"] is True
    assert "critical" not in cb.body(**common)
