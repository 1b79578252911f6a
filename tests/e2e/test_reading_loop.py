"""The remote-reading loop over one real `yingyun serve` process (issue 15, "Done when"): a hospital sends a
study (RIS over the signed JSON API, images by C-STORE), a radiologist of the reading centre locks and reports it
from the exam item's template, a reviewer returns it, the radiologist fixes and resubmits, the reviewer approves;
the hospital's RIS, down at first, then gets the signed final report exactly once, and the partner API shows it.
Everything set up as an operator would: `yingyun admin` commands on the data dir.
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx

from yingyun.cloud.staff.edge import CSRF_HEADER

from ..support.dicom_data import StudySpec, make_study
from ..support.net import free_port, wait_http
from ..support.ris_peers import RisReceiver
from .test_split import TOKEN, YINGYUN, Proc, admin, prepare, ris, stop, storescu, until

PASSWORD = "correct horse battery"
UID = "1.2.826.0.1.3680043.10.1515.1"


def add_user(data, username: str, name: str, role: str) -> None:
    subprocess.run([YINGYUN, "admin", "user", "add", "--username", username, "--name", name, "--role", role,
                    "--password-stdin", "--data-dir", str(data)], input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True, timeout=60)


def signed_in(url: str, username: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=30)
    body = c.post("/api/v1/session", json={"username": username, "password": PASSWORD}).json()
    assert body["code"] == 0, body
    c.headers[CSRF_HEADER] = body["data"]["csrfToken"]
    return c


def data(r: httpx.Response):
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0, body
    return body.get("data")


def test_a_study_read_at_the_centre_comes_back_to_the_hospitals_ris_once(tmp_path):
    d = tmp_path / "d"
    prepare(d)
    admin(d, "union", "add", "--id", "u1", "--name", "医联体")
    admin(d, "hospital", "add", "--id", "h1", "--name", "一院", "--union", "u1")
    admin(d, "hospital", "add", "--id", "h2", "--name", "阅片中心", "--union", "u1")
    admin(d, "partner", "add", "--app-id", "ris1", "--token", TOKEN, "--hospital", "h1")
    admin(d, "pacs", "add", "--ae-title", "PACS1", "--host", "127.0.0.1", "--port", "104", "--hospital", "h1")
    admin(d, "reading-route", "add", "--from-hospital", "h1", "--to-hospital", "h2")
    routes = json.loads(admin(d, "reading-route", "list", "--json"))
    assert [(r["fromHospitalId"], r["toHospitalId"]) for r in routes] == [("h1", "h2")]
    add_user(d, "rad", "王放射", "radiologist:hospital:h2")
    add_user(d, "rev", "赵审核", "reviewer:hospital:h2")
    add_user(d, "centre", "中心管理员", "admin:hospital:h2")
    receiver = RisReceiver("ris1", TOKEN)  # the RIS is down when the report is signed off

    http, dicom = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    proc = Proc([YINGYUN, "serve", "--data-dir", str(d), "--host", "127.0.0.1", "--http-port", str(http),
                 "--dicom-port", str(dicom), "--stable-seconds", "1", "--ris-report-url", receiver.url],
                tmp_path / "serve.log").start()
    clients: list[httpx.Client] = []
    try:
        wait_http(url)
        spec = StudySpec(study_uid=UID, accession="A1")
        assert ris(url, "/ris/study/add", {"patientId": "P1", "patientName": "张三丰", "patientSex": "M",
                                           "studyId": "S1", "accessNumber": "A1", "modality": "CT",
                                           "studyUid": UID, "studyDesc": "胸部CT平扫", "bodyPart": "胸部"})["code"] == 0
        assert storescu(dicom, make_study(tmp_path / "img", spec, series=1, per_series=3)) == 0

        centre = signed_in(url, "centre")
        rad, rev = signed_in(url, "rad"), signed_in(url, "rev")
        clients += [centre, rad, rev]
        part = data(centre.post("/api/v1/body-parts", json={"name": "胸部", "modality": "CT"}))
        data(centre.post("/api/v1/exam-items", json={
            "name": "胸部CT平扫", "bodyPartId": part["id"], "modality": "CT",
            "templateDescription": "双肺纹理清晰。", "templateConclusion": "未见明显异常。"}))

        def unread():
            items = data(rad.get("/api/v1/worklist", params={"state": "unread"}))["items"]
            return [i for i in items if i["studyUid"] == UID]
        (row,) = until(unread, what="the study in the centre's worklist once its images are stable")
        assert row["hospitalId"] == "h1" and row["patientName"] == "张三丰"

        data(rad.post(f"/api/v1/studies/{UID}/lock"))
        taken = rev.post(f"/api/v1/studies/{UID}/lock").json()
        assert taken["code"] == 30010, taken  # the reviewer may not take a study the radiologist holds
        report = data(rad.get(f"/api/v1/studies/{UID}/report"))  # the lock opened it from the exam item's template
        assert (report["imageDescription"], report["conclusion"]) == ("双肺纹理清晰。", "未见明显异常。")
        version = report["version"]
        saved = data(rad.put(f"/api/v1/studies/{UID}/report", json={
            "imageDescription": "双肺纹理清晰，右肺上叶见小结节。", "conclusion": "右肺上叶小结节",
            "version": version}))
        assert saved["version"] == version + 1
        stale = rad.put(f"/api/v1/studies/{UID}/report", json={
            "imageDescription": "x", "conclusion": "y", "version": version}).json()
        assert stale["code"] == 30006, stale  # nothing overwritten by a save of an older version
        data(rad.post(f"/api/v1/studies/{UID}/report/submit"))
        data(rev.post(f"/api/v1/studies/{UID}/report/return", json={"comment": "请注明结节大小"}))
        assert data(rad.get(f"/api/v1/studies/{UID}/report"))["state"] == "returned"
        data(rad.post(f"/api/v1/studies/{UID}/lock"))
        now = data(rad.get(f"/api/v1/studies/{UID}/report"))
        assert now["version"] > saved["version"]
        data(rad.put(f"/api/v1/studies/{UID}/report", json={
            "imageDescription": "右肺上叶见约6mm小结节。", "conclusion": "右肺上叶小结节（约6mm）",
            "version": now["version"]}))
        data(rad.post(f"/api/v1/studies/{UID}/report/submit"))
        own = rad.post(f"/api/v1/studies/{UID}/report/approve").json()
        assert own["code"] == 20008, own  # the author does not approve their own report
        data(rev.post(f"/api/v1/studies/{UID}/report/approve"))
        final = data(rev.get(f"/api/v1/studies/{UID}/report"))
        assert final["state"] == "final" and final["reportDoctor"] == "王放射" and final["auditDoctor"] == "赵审核"

        deliveries = until(lambda: [r for r in json.loads(admin(d, "ris-deliveries", "--json"))
                                    if r["studyUid"] == UID and r["lastError"]],
                           what="a delivery the RIS, still down, did not take")
        assert deliveries[0]["state"] == "pending"
        receiver.up()
        until(lambda: receiver.accepted, timeout=120, what="the report at the RIS")
        until(lambda: all(r["state"] == "delivered" for r in json.loads(admin(d, "ris-deliveries", "--json"))
                          if r["studyUid"] == UID), what="delivered")
        time.sleep(2)  # a later pass sends nothing more
    finally:
        for c in clients:
            c.close()
        stop(proc)
        receiver.down()
    assert receiver.bad_signatures == []
    (got,) = receiver.accepted
    assert got.body["studyUid"] == UID and got.body["status"] == "final"
    assert got.body["conclusion"] == "右肺上叶小结节（约6mm）"
    assert got.body["reportDoctor"] == "王放射" and got.body["auditDoctor"] == "赵审核"
