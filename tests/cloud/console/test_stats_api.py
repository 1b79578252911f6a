"""`/api/v1/stats`, `/api/v1/audit` and `/api/v1/discrepancies` over HTTP: the figures of what was sent, in scope."""

from __future__ import annotations

from datetime import datetime, timedelta

from yingyun.cloud.staff.audit import record_action
from yingyun.contract.codes import Code
from yingyun.storage import schema as s

from ...support.partners import PartnerClient


def stats(client, **params) -> dict:
    return client.get("/api/v1/stats", params=params).json()


def test_an_operator_sees_every_hospital_and_the_figures_sent(staff_world, sent) -> None:
    op, _ = staff_world.sign_in("op")
    body = stats(op, **{"from": (sent - timedelta(days=6)).isoformat(), "to": sent.isoformat()})
    assert body["code"] == 0, body
    data = body["data"]
    assert data["from"] == (sent - timedelta(days=6)).isoformat() and data["timezone"] == "Asia/Shanghai"
    by_hospital = {row["hospitalId"]: row for row in data["days"]}
    assert set(by_hospital) == {"h1", "h2"}
    assert by_hospital["h1"]["studies"] == 2 and by_hospital["h1"]["patientVisits"] == 1
    assert set(by_hospital["h1"]["byModality"]) == {"CT", "MR"}
    assert by_hospital["h2"]["studies"] == 1 and by_hospital["h2"]["byModality"]["CT"]["studies"] == 1
    assert set(data["gauges"]) == {"gateways", "callbacks", "discrepancies", "disk"}


def test_a_hospital_admin_sees_only_their_hospital(staff_world, sent) -> None:
    h1, _ = staff_world.sign_in("h1admin")
    day = sent.isoformat()
    assert {r["hospitalId"] for r in stats(h1, **{"from": day, "to": day})["data"]["days"]} == {"h1"}
    assert {r["hospitalId"] for r in stats(h1, **{"from": day, "to": day, "unionId": "u1"})["data"]["days"]} == {"h1"}
    assert stats(h1, **{"from": day, "to": day, "hospitalId": "h2"})["code"] == Code.NO_PERMISSION
    assert stats(h1, **{"from": day, "to": day, "hospitalId": "h3"})["code"] == Code.NO_PERMISSION
    u1, _ = staff_world.sign_in("u1admin")
    assert {r["hospitalId"] for r in stats(u1, **{"from": day, "to": day})["data"]["days"]} == {"h1", "h2"}
    assert {r["hospitalId"] for r in stats(u1, **{"from": day, "to": day, "hospitalId": "h2"})["data"]["days"]} \
        == {"h2"}


def test_every_code_of_the_stats_call(staff_world, sent) -> None:
    day = sent.isoformat()
    assert stats(staff_world.client(), **{"from": day, "to": day})["code"] == Code.AUTH_EXPIRED
    reader, _ = staff_world.sign_in("reader")  # a clinician is no auditor
    assert stats(reader, **{"from": day, "to": day})["code"] == Code.NO_PERMISSION
    op, _ = staff_world.sign_in("op")
    assert stats(op, to=day)["code"] == Code.REQUIRED_EMPTY
    missing = stats(op, **{"from": day})
    assert missing["code"] == Code.REQUIRED_EMPTY and "to" in missing["message"]
    assert stats(op, **{"from": "2026/12/01", "to": day})["code"] == Code.INVALID_FORMAT
    assert stats(op, **{"from": day, "to": "2020-01-01"})["code"] == Code.INVALID_FORMAT
    assert stats(op, **{"from": day, "to": day, "hospitalId": "h404"})["code"] == Code.INSTITUTION_NOT_FOUND
    assert stats(op, **{"from": day, "to": day, "unionId": "u404"})["code"] == Code.UNION_NOT_FOUND


def test_the_audit_trail_reads_staff_and_patient_rows_with_filters(staff_world) -> None:
    rt = staff_world.runtime
    now = datetime.now().timestamp()
    with rt.db.write() as conn:
        record_action(conn, username="h1admin", action="department.add", subject_kind="department",
                      subject_id="d1", hospital_id="h1", detail={"name": "changed"}, at=now - 5)
        record_action(conn, username="op", action="union.add", subject_kind="union", subject_id="u9", at=now - 4)
        conn.execute(s.access_audit.insert().values(at=now - 3, link_kind="qr", hospital_id="h2", study_id="S9",
                                                    study_uid="1.2.3", access="view"))
    op, _ = staff_world.sign_in("op")
    everything = op.get("/api/v1/audit").json()["data"]
    actions = [i["action"] for i in everything["items"]]
    # Newest first; signing in is audited too (by accounts), so look at ours.
    assert [a for a in actions if a in ("view", "union.add", "department.add")] == ["view", "union.add",
                                                                                    "department.add"]
    assert op.get("/api/v1/audit", params={"kind": "patient"}).json()["data"]["items"][0]["studyUid"] == "1.2.3"
    assert op.get("/api/v1/audit", params={"studyUid": "1.2.3"}).json()["data"]["total"] == 1
    by_user = op.get("/api/v1/audit", params={"username": "h1admin"}).json()["data"]["items"]
    assert {i["username"] for i in by_user} == {"h1admin"} and by_user[-1]["subject"] == "department:d1"
    assert op.get("/api/v1/audit", params={"kind": "union.add"}).json()["data"]["total"] == 1
    page = op.get("/api/v1/audit", params={"limit": 1, "offset": 1}).json()["data"]
    assert len(page["items"]) == 1 and page["total"] == everything["total"]
    assert op.get("/api/v1/audit", params={"limit": "x"}).json()["code"] == Code.INVALID_FORMAT
    # A hospital admin reads their hospital's rows only, none of the platform's.
    h1, _ = staff_world.sign_in("h1admin")
    mine = h1.get("/api/v1/audit").json()["data"]["items"]
    assert mine and {i["hospitalId"] for i in mine} == {"h1"}
    reader, _ = staff_world.sign_in("reader")
    assert reader.get("/api/v1/audit").json()["code"] == Code.NO_PERMISSION


def test_discrepancies_are_listed_in_scope(staff_world) -> None:
    rt = staff_world.runtime
    _, token = rt.tenancy.add_partner(app_id="ris-h2", hospitals=["h2"])
    ris = PartnerClient(staff_world.url, "ris-h2", token)
    log = {"studyId": "S404", "accessNumber": "A404", "patientName": "张三丰", "studyUid": "1.2.826.0.1.3680043.10.9",
           "studyDate": "2026-11-20 09:30:00", "seriesCnt": 1, "imageCnt": 3, "reportCnt": 1, "pdfCnt": 0}
    assert ris.post("/ris/reconcilelog", log)["code"] == 0
    ris.close()
    op, _ = staff_world.sign_in("op")
    items = op.get("/api/v1/discrepancies").json()["data"]["items"]
    assert [(i["hospitalId"], i["studyId"], i["kind"]) for i in items] == [("h2", "S404", "missing")]
    h1, _ = staff_world.sign_in("h1admin")
    assert h1.get("/api/v1/discrepancies").json()["data"] == {"items": [], "total": 0}


def test_in_serve_mode_the_gauges_read_the_local_outbox(staff_world, sent) -> None:
    """`serve` holds the gateway side's outbox in its own database: operators see it as gateway "local"."""
    from yingyun.gateway.outbox import KIND, INSTANCE
    from yingyun.storage.queue import SqlJobQueue

    day = sent.isoformat()
    op, _ = staff_world.sign_in("op")
    (local,) = stats(op, **{"from": day, "to": day})["data"]["gauges"]["gateways"]
    assert local["gatewayId"] == "local" and local["backlog"]["pending"] == 0 and local["lastSuccessAt"] is None
    queue = SqlJobQueue(staff_world.runtime.db)
    with staff_world.runtime.db.write() as conn:
        queue.enqueue(conn, kind=KIND, payload={"kind": INSTANCE, "blobKey": "k", "size": 2048, "sopUid": "1.2"},
                      order_key=None)
        queue.enqueue(conn, kind=KIND, payload={"kind": "study", "versionPk": 1}, order_key="h1/S1")
    (local,) = stats(op, **{"from": day, "to": day})["data"]["gauges"]["gateways"]
    b = local["backlog"]
    assert (b["pending"], b["pendingRecords"], b["pendingInstances"], b["pendingBytes"], b["parked"]) == (2, 1, 1,
                                                                                                          2048, 0)
    h1, _ = staff_world.sign_in("h1admin")  # one outbox for every hospital: not a hospital admin's to see
    assert stats(h1, **{"from": day, "to": day})["data"]["gauges"]["gateways"] == []


def test_damaged_objects_are_listed_in_scope(staff_world, tmp_path) -> None:
    from pydicom.uid import ExplicitVRLittleEndian

    from yingyun.archive.scrub import Scrubber

    from ...support.dicom_peers import dataset_bytes, make_instance

    rt = staff_world.runtime
    for n, hospital in enumerate(["h1", "h2", "h2"]):
        path = tmp_path / f"{n}.dcm"
        make_instance(path, index=n)
        rt.instances.store(hospital_id=hospital, data=dataset_bytes(path), transfer_syntax_uid=ExplicitVRLittleEndian)
    with rt.db.read() as conn:
        keys = dict(conn.execute(s.instances.select().with_only_columns(s.instances.c.blob_key,
                                                                          s.instances.c.hospital_id)).all())
    h2_keys = sorted(k for k, h in keys.items() if h == "h2")
    rt.blobs.delete(h2_keys[0])
    rt.blobs.put(h2_keys[1], b"not what was received")
    Scrubber(rt.db, rt.blobs, rate_bytes=0).check_all()
    op, _ = staff_world.sign_in("op")
    data = op.get("/api/v1/damaged-objects").json()["data"]
    assert [(i["hospitalId"], i["blobKey"], i["state"]) for i in data["items"]] == [
        ("h2", h2_keys[0], "missing"), ("h2", h2_keys[1], "corrupt")]
    h1, _ = staff_world.sign_in("h1admin")
    assert h1.get("/api/v1/damaged-objects").json()["data"] == {"items": [], "total": 0}
    reader, _ = staff_world.sign_in("reader")
    assert reader.get("/api/v1/damaged-objects").json()["code"] == Code.NO_PERMISSION
