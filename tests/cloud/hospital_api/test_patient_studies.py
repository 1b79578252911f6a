"""§3.1 patientStudies and §3.3 patientReportUrl over real HTTP, as a partner calls them."""

from __future__ import annotations

import httpx
import orjson

from yingyun.contract.signing import signed_headers

from .conftest import ID_P, ID_Q, IH2_TOKEN, PHONE_P, PHONE_Q, enc, ok, query, report, study


def seed(ris) -> None:
    ok(ris["h1"].post("/ris/study/add", study("S1", date="2026-11-20 09:30:00")))
    ok(ris["h2"].post("/ris/study/add", study("S2", date="2026-11-21 10:00:00")))
    ok(ris["h2"].post("/ris/study/add", study("U1", date="2026-11-21 12:00:00", modality="US")))
    ok(ris["h3"].post("/ris/study/add", study("S3", date="2026-11-22 11:00:00")))
    # The same patient, ID card written with a lowercase check character.
    ok(ris["h1"].post("/ris/study/add", study("S4", id_card=ID_P.lower(), date="2026-11-23 08:00:00")))
    # Someone else, in the same hospital, with the same phone number (a family phone).
    ok(ris["h1"].post("/ris/study/add", study("Q1", id_card=ID_Q, phone=PHONE_P, name="李四")))
    ok(ris["h1"].post("/ris/study/add", study("Q2", id_card=ID_Q, phone=PHONE_Q, name="李四")))
    # No ID card on record: matched by phone (and name, when the partner gives one).
    ok(ris["h2"].post("/ris/study/add", study("N1", id_card=None, date="2026-11-24 08:00:00")))
    ok(ris["h2"].post("/ris/study/add", study("N2", id_card=None, name="王五", date="2026-11-24 09:00:00")))
    ok(ris["h1"].post("/ris/report/add", report("S1")))


def ids(data) -> list[str]:
    return [s["studyId"] for s in data]


def test_data_flags_scope_and_matching(ih, ih2, ris):
    seed(ris)
    everything = ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=0)))
    # Newest first; the phone-only studies count when no name is given; Q's never.
    assert ids(everything) == ["N2", "N1", "S4", "S3", "S2", "S1"]
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=1, hospitalId="h1")))) == ["S4", "S1"]
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=2, hospitalId="h1")))) == \
        ["N2", "N1", "S3", "S2"]
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=3, unionId="u1")))) == \
        ["N2", "N1", "S4", "S2", "S1"]
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=4, unionId="u1")))) == ["S3"]
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=3, unionId="u2", hospitalId="h3")))) == \
        ["S3"]
    # With a name, a phone-only study must carry that name too.
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(patientName="张三丰")))) == \
        ["N1", "S4", "S3", "S2", "S1"]
    # studyType is an equality filter (US -> 5); the date range is inclusive at both ends.
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(studyType=5)))) == ["U1"]
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(
        studyDateBegin="2026-11-21 10:00:00", studyDateEnd="2026-11-22 11:00:00")))) == ["S3", "S2"]
    # The other patient sees only their own.
    q = query(idNum=enc(ID_Q), phoneNum=enc(PHONE_Q))
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", q))) == ["Q2", "Q1"]

    # A partner granted h1 only: dataFlag 0 stays inside its grant; other hospitals/unions are 20008.
    q2 = query(phoneNum=enc(PHONE_P, IH2_TOKEN), idNum=enc(ID_P, IH2_TOKEN))
    assert ids(ok(ih2.post("/thirdparty/patientStudies/ih2", q2))) == ["S4", "S1"]
    refused = ih2.post("/thirdparty/patientStudies/ih2", dict(q2, hospitalId="h2"))
    assert refused["code"] == 20008 and "h2" in refused["message"]
    assert ih2.post("/thirdparty/patientStudies/ih2", dict(q2, unionId="u2"))["code"] == 20008
    assert ih.post("/thirdparty/patientStudies/ih", query(hospitalId="h9"))["code"] == 20008

    # Deleted studies never appear.
    s4 = study("S4")
    ok(ris["h1"].post("/ris/study/delete", {"patientId": s4["patientId"], "studyId": "S4",
                                           "accessNumber": s4["accessNumber"], "studyUid": "1.2.3"}))
    assert "S4" not in ids(ok(ih.post("/thirdparty/patientStudies/ih", query())))


def test_study_fields_links_and_usage(ih, ris, server):
    seed(ris)
    data = ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=1)))
    s1 = next(s for s in data if s["studyId"] == "S1")
    report_id = s1["reportId"]
    assert report_id.isdigit()
    assert {k: v for k, v in s1.items() if k not in ("h5Url", "h5DetailUrl", "reportId")} == {
        "hisId": "HIS-S1", "studyType": 0, "studyDate": "2026-11-20 09:30:00", "studyId": "S1",
        "bodyPart": "胸部", "studyName": "胸部CT平扫", "applyDoctor": "李医生", "applyDoctorId": "D01",
        "applyDept": "呼吸内科", "applyDeptId": "K01", "uniAppId": "wx-mini-1",
        "uniPath": f"pages/study?rid={report_id}&sid=S1&h=h1", "hospitalId": "h1",
    }
    s4 = next(s for s in data if s["studyId"] == "S4")
    assert s4["reportId"] == ""
    # Patient links: the report page and the image viewer open without verification.
    assert s1["h5Url"].startswith(server.url + "/h5/p/") and s1["h5DetailUrl"] == s1["h5Url"] + "/viewer"
    page = httpx.get(s1["h5Url"])
    assert page.status_code == 200 and "未见明显异常" in page.text
    assert httpx.get(s1["h5DetailUrl"]).status_code == 200
    # Asked again soon, the same link comes back (no new row per call); the report id is stable.
    again = ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=1)))
    assert next(s for s in again if s["studyId"] == "S1")["h5Url"] == s1["h5Url"]
    ok(ris["h1"].post("/ris/report/add", dict(report("S1"), conclusion="修订：少许炎症")))
    assert next(s for s in ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=1)))
                if s["studyId"] == "S1")["reportId"] == report_id
    # usage 2: doctor links.
    doc = ok(ih.post("/thirdparty/patientStudies/ih", query(dataFlag=1, usage=2)))
    assert all("/h5/d/" in s["h5Url"] for s in doc)
    assert httpx.get(doc[0]["h5Url"]).status_code == 200

    # §3.3: by reportId.
    url = ok(ih.post("/thirdparty/patientReportUrl/ih", {"reportId": report_id, "phoneNum": enc(PHONE_P),
                                                         "idNum": enc(ID_P), "hospitalId": "h1"}))
    assert url["studyId"] == "S1" and url["h5DetailUrl"] == url["h5Url"] + "/viewer"
    assert "少许炎症" in httpx.get(url["h5Url"]).text
    other = ih.post("/thirdparty/patientReportUrl/ih", {"reportId": report_id, "phoneNum": enc(PHONE_Q),
                                                        "idNum": enc(ID_Q), "hospitalId": "h1"})
    assert other["code"] == 30009
    unknown = ih.post("/thirdparty/patientReportUrl/ih", {"reportId": "999999", "phoneNum": enc(PHONE_P),
                                                          "idNum": enc(ID_P), "hospitalId": "h1"})
    assert unknown["code"] == 30003
    wrong_hospital = ih.post("/thirdparty/patientReportUrl/ih", {"reportId": report_id, "phoneNum": enc(PHONE_P),
                                                                 "idNum": enc(ID_P), "hospitalId": "h2"})
    assert wrong_hospital["code"] == 30003


def test_refusals(ih, ris, server, runtime):
    seed(ris)
    missing = ih.post("/thirdparty/patientStudies/ih", {"phoneNum": enc(PHONE_P)})
    assert missing["code"] == 20031
    for name in ("idNum", "hospitalId", "unionId", "studyType", "dataFlag", "usage", "studyDateBegin", "studyDateEnd"):
        assert name in missing["message"]
    bad = ih.post("/thirdparty/patientStudies/ih", query(dataFlag=7, studyDateEnd="yesterday"))
    assert bad["code"] == 20030 and "dataFlag" in bad["message"] and "studyDateEnd" in bad["message"]
    undecryptable = ih.post("/thirdparty/patientStudies/ih", query(idNum="00" * 16))
    assert undecryptable["code"] == 100001 and "idNum" in undecryptable["message"]
    assert ih.post("/thirdparty/patientStudies/ih", query(phoneNum="not hex"))["code"] == 100001
    assert ih.post("/thirdparty/patientStudies/ih", None, raw=b"{nope")["code"] == 20030
    assert ih.post("/thirdparty/patientStudies/ih", None, raw=orjson.dumps([1, 2]))["code"] == 20030
    # The {appId} of the path must be the signer's.
    assert ih.post("/thirdparty/patientStudies/ih2", query())["code"] == 90002
    # Unsigned, or signed with a wrong token: refused before the body is read.
    r = httpx.post(server.url + "/thirdparty/patientStudies/ih", json=query())
    assert r.status_code == 200 and r.json()["code"] == 90001
    r = httpx.post(server.url + "/thirdparty/patientStudies/ih", json=query(),
                   headers=signed_headers("ih", "x" * 32))
    assert r.json()["code"] == 90002
    # GET with the same fields as query parameters.
    r = httpx.get(server.url + "/thirdparty/patientStudies/ih", params=query(dataFlag=1),
                  headers=signed_headers("ih", ih.token))
    assert [s["studyId"] for s in r.json()["data"]] == ["S4", "S1"]
    # Encrypted values are accepted in upper-case hex too.
    assert ids(ok(ih.post("/thirdparty/patientStudies/ih", query(idNum=enc(ID_P).upper(), dataFlag=1)))) == \
        ["S4", "S1"]
    # Every /thirdparty path is in the OpenAPI document.
    spec = httpx.get(server.url + "/openapi.json").json()
    for path in ("patientStudies", "patientConsultations", "patientReportUrl", "consultations/create",
                 "consultations/conclude", "doctors/add"):
        assert f"/thirdparty/{path}/{{appId}}" in spec["paths"]


def test_rate_limit_per_partner(ih, ih2, ris, runtime):
    from yingyun.cloud.hospital_api.ratelimit import set_limit

    with runtime.db.write() as conn:
        set_limit(conn, app_id="ih2", per_window=5, now=0)
    q2 = query(phoneNum=enc(PHONE_P, IH2_TOKEN), idNum=enc(ID_P, IH2_TOKEN))
    codes = [ih2.post("/thirdparty/patientStudies/ih2", q2)["code"] for _ in range(8)]
    assert codes[:5] == [0] * 5 and codes[5:] == [90003] * 3
    # Another partner's budget is its own.
    assert ih.post("/thirdparty/patientStudies/ih", query())["code"] == 0

