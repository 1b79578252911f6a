"""Consultations: doctors, the state machine with every refusal code, the patient's page, the CLI."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import cli, ID_P, ID_Q, IH2_TOKEN, PHONE_P, PHONE_Q, enc, ok, study

C = "/thirdparty/consultations/{}/ih"


def doctors(ih) -> None:
    for did, name, h in (("d1", "赵主任", "h1"), ("e1", "钱教授", "h2"), ("e2", "孙教授", "h3"), ("e3", "李教授", "h1"),
                         ("e4", "周教授", "h2")):
        ok(ih.post("/thirdparty/doctors/add/ih", {"doctorId": did, "name": name, "hospitalId": h, "title": "主任医师"}))


def test_state_machine_and_refusals(ih, ih2, ris, server):
    ok(ris["h1"].post("/ris/study/add", study("S1")))
    ok(ris["h2"].post("/ris/study/add", study("S2")))
    ok(ris["h1"].post("/ris/study/add", study("Q1", id_card=ID_Q, phone=PHONE_Q, name="李四")))
    doctors(ih)
    assert ih.post("/thirdparty/doctors/add/ih", {"doctorId": "d1", "name": "x", "hospitalId": "h1"})["code"] == 20027
    assert ih2.post("/thirdparty/doctors/add/ih2", {"doctorId": "z9", "name": "x", "hospitalId": "h2"})["code"] == 20008
    assert [d["doctorId"] for d in ok(ih2.post("/thirdparty/doctors/list/ih2", {}))] == ["d1", "e3"]

    studies = [{"hospitalId": "h1", "studyId": "S1"}, {"hospitalId": "h2", "studyId": "S2"}]
    # Refusals at creation.
    assert ih.post(C.format("create"), {"studies": studies, "expertIds": ["nobody"]})["code"] == 20028
    assert ih.post(C.format("create"), {"studies": studies, "expertIds": ["e1", "e2", "e3", "e4"]})["code"] == 40011
    mixed = ih.post(C.format("create"), {"studies": studies + [{"hospitalId": "h1", "studyId": "Q1"}]})
    assert mixed["code"] == 20030 and "one patient" in mixed["message"]
    assert ih.post(C.format("create"), {"studies": [{"hospitalId": "h1", "studyId": "nope"}]})["code"] == 30008
    assert ih.post(C.format("create"), {"expertIds": ["e1"]})["code"] == 20031
    assert ih.post(C.format("create"), {"studies": "S1"})["code"] == 20030
    assert ih2.post("/thirdparty/consultations/create/ih2", {"studies": studies})["code"] == 20008

    made = ok(ih.post(C.format("create"), {"studies": studies, "expertIds": ["e1", "e2"], "requestingDoctorId": "d1",
                                           "purpose": "肺结节性质？"}))
    cid = made["consultationId"]
    assert made["status"] == "requested" and [e["doctorId"] for e in made["experts"]] == ["e1", "e2"]
    # Scheduling (and editing) before it starts.
    upd = ok(ih.post(C.format("update"), {"consultationId": cid, "scheduledAt": "2026-12-01 14:00:00",
                                          "meetingUrl": "https://meet.example/abc", "expertIds": ["e1", "e2", "e3"]}))
    assert upd["status"] == "scheduled" and upd["scheduledAt"] == "2026-12-01 14:00:00"
    assert ih.post(C.format("update"), {"consultationId": cid, "expertIds": ["e1", "e2", "e3", "e4"]})["code"] == 40011
    assert ih.post(C.format("update"), {"consultationId": cid, "scheduledAt": "tomorrow"})["code"] == 20030
    # Another partner cannot see or touch it; an unknown id is not found.
    assert ih2.post("/thirdparty/consultations/get/ih2", {"consultationId": cid})["code"] == 20008
    assert ih.post(C.format("get"), {"consultationId": "nope"})["code"] == 100004
    # Concluding before it starts is refused.
    assert ih.post(C.format("conclude"), {"consultationId": cid, "doctorId": "e1", "conclusion": "x"})["code"] == 10005
    started = ok(ih.post(C.format("start"), {"consultationId": cid}))
    assert started["status"] == "in_progress"
    assert ih.post(C.format("update"), {"consultationId": cid, "purpose": "改"})["code"] == 40008
    assert ih.post(C.format("cancel"), {"consultationId": cid})["code"] == 40009
    # Only an invited expert concludes; then the conclusion is locked.
    assert ih.post(C.format("conclude"), {"consultationId": cid, "doctorId": "d1", "conclusion": "x"})["code"] == 20008
    assert ih.post(C.format("conclude"), {"consultationId": cid, "doctorId": "zz", "conclusion": "x"})["code"] == 20028
    done = ok(ih.post(C.format("conclude"), {"consultationId": cid, "doctorId": "e2",
                                             "conclusion": "考虑良性结节，建议6个月复查。"}))
    assert done["status"] == "concluded" and done["concludedBy"] == "e2"
    assert ih.post(C.format("conclude"), {"consultationId": cid, "doctorId": "e1", "conclusion": "y"})["code"] == 40010
    assert ih.post(C.format("update"), {"consultationId": cid, "purpose": "改"})["code"] == 40008
    assert ih.post(C.format("cancel"), {"consultationId": cid})["code"] == 40009

    # A second one, cancelled before it starts; cancelled ones cannot start.
    other = ok(ih.post(C.format("create"), {"studies": studies[:1]}))["consultationId"]
    assert ok(ih.post(C.format("cancel"), {"consultationId": other}))["status"] == "cancelled"
    assert ih.post(C.format("start"), {"consultationId": other})["code"] == 10005
    listed = ok(ih.post(C.format("list"), {}))
    assert [c["consultationId"] for c in listed] == [other, cid]
    assert [c["consultationId"] for c in ok(ih.post(C.format("list"), {"status": "concluded"}))] == [cid]

    # §3.2: the patient's page lists them with status, experts, time and conclusion.
    page_url = ok(ih.post("/thirdparty/patientConsultations/ih", {
        "hisId": "HIS-S1", "phoneNumber": enc(PHONE_P), "idNum": enc(ID_P), "hospitalId": "h1",
        "unionId": "u1"}))["h5Url"]
    assert page_url.startswith(server.url + "/h5/consultations/")
    page = httpx.get(page_url)
    assert page.status_code == 200
    for text in ("已完成", "已取消", "钱教授", "孙教授", "2026-12-01 14:00:00", "考虑良性结节，建议6个月复查。",
                 "第一医院"):
        assert text in page.text
    assert "no-store" in page.headers["cache-control"]
    # phoneNum is accepted for phoneNumber; another patient's page is empty.
    q_url = ok(ih.post("/thirdparty/patientConsultations/ih", {
        "hisId": "HIS-Q1", "phoneNum": enc(PHONE_Q), "idNum": enc(ID_Q), "hospitalId": "h1", "unionId": "u1"}))["h5Url"]
    assert "暂无会诊记录" in httpx.get(q_url).text
    # ih2 (h1 only) sees only consultations wholly within its grant: the cancelled one, about S1 alone.
    ih2_url = ok(ih2.post("/thirdparty/patientConsultations/ih2", {
        "hisId": "HIS-S1", "phoneNumber": enc(PHONE_P, IH2_TOKEN), "idNum": enc(ID_P, IH2_TOKEN), "hospitalId": "h1",
        "unionId": "u1"}))["h5Url"]
    ih2_page = httpx.get(ih2_url).text
    assert "已取消" in ih2_page and "考虑良性结节" not in ih2_page
    assert [c["consultationId"] for c in ok(ih2.post("/thirdparty/consultations/list/ih2", {}))] == [other]
    assert ih2.post("/thirdparty/patientConsultations/ih2", {
        "hisId": "x", "phoneNumber": enc(PHONE_P, IH2_TOKEN), "idNum": enc(ID_P, IH2_TOKEN), "hospitalId": "h2",
        "unionId": "u1"})["code"] == 20008
    missing = ih.post("/thirdparty/patientConsultations/ih", {"idNum": enc(ID_P)})
    assert missing["code"] == 20031 and "hisId" in missing["message"] and "phoneNumber" in missing["message"]
    assert httpx.get(server.url + "/h5/consultations/" + "A" * 43).status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the CLI over the same services; once is enough
def test_operator_cli(ris, server, runtime):
    st = runtime.settings
    ok(ris["h1"].post("/ris/study/add", study("S1")))
    assert "doctor e1 added" in cli(st, "doctor", "add", "--id", "e1", "--name", "钱教授", "--hospital", "h2").stdout
    assert "doctor e1 updated" in cli(st, "doctor", "add", "--id", "e1", "--name", "钱主任", "--hospital", "h2").stdout
    cli(st, "doctor", "add", "--id", "e2", "--name", "孙教授", "--hospital", "h3")
    cli(st, "doctor", "add", "--id", "e3", "--name", "李教授", "--hospital", "h3")
    docs = json.loads(cli(st, "doctor", "list", "--json").stdout)
    assert [(d["doctorId"], d["name"]) for d in docs] == [("e1", "钱主任"), ("e2", "孙教授"), ("e3", "李教授")]
    cli(st, "doctor", "remove", "--id", "e2")
    bad = cli(st, "doctor", "remove", "--id", "nobody", check=False)
    assert bad.returncode == 1 and "20028" in bad.stderr
    out = cli(st, "consultation", "add", "--hospital", "h1", "--study", "S1", "--expert", "e1", "--expert", "e3",
              "--at", "2026-12-02 09:00:00").stdout
    cid = out.split()[1]
    held = cli(st, "doctor", "remove", "--id", "e3", check=False)  # invited: the record names the doctor
    assert held.returncode == 1 and f"doctor e3 has 1 consultation ({cid}): nothing was changed" in held.stderr
    shown = json.loads(cli(st, "consultation", "show", "--id", cid).stdout)
    assert shown["status"] == "scheduled" and [e["doctorId"] for e in shown["experts"]] == ["e1", "e3"]
    # times carry the zone's offset; --at takes a time pasted with its offset too
    assert shown["scheduledAt"] == "2026-12-02T09:00:00+08:00" and shown["createdAt"].endswith("+08:00")
    cli(st, "consultation", "update", "--id", cid, "--at", "2026-12-02T02:00:00Z")
    assert json.loads(cli(st, "consultation", "show", "--id", cid).stdout)["scheduledAt"] == "2026-12-02T10:00:00+08:00"
    cli(st, "consultation", "start", "--id", cid)
    refused = cli(st, "consultation", "cancel", "--id", cid, check=False)
    assert refused.returncode == 1 and "40009" in refused.stderr
    cli(st, "consultation", "conclude", "--id", cid, "--doctor", "e1", "--text", "良性")
    again = cli(st, "consultation", "conclude", "--id", cid, "--doctor", "e2", "--text", "x", check=False)
    assert "40010" in again.stderr
    rows = json.loads(cli(st, "consultation", "list", "--json").stdout)
    assert [(r["consultationId"], r["status"], r["conclusion"]) for r in rows] == [(cid, "concluded", "良性")]
    assert "40011" in cli(st, "consultation", "add", "--hospital", "h1", "--study", "S1", *sum(
        (["--expert", e] for e in ("e1", "e2", "e1x", "e2x", "e3x", "e4x")), []), check=False).stderr
    cli(st, "ratelimit", "set", "--app-id", "ih", "--per-minute", "100")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the browser is what is under test
def test_patient_page_in_a_browser(ih, ris, server):
    from ..browser import PHONE, chromium

    ok(ris["h1"].post("/ris/study/add", study("S1")))
    doctors(ih)
    ok(ih.post(C.format("create"), {"studies": [{"hospitalId": "h1", "studyId": "S1"}], "expertIds": ["e3"],
                                    "purpose": "肺结节会诊"}))
    asked = {"hisId": "HIS-S1", "phoneNumber": enc(PHONE_P), "idNum": enc(ID_P), "hospitalId": "h1", "unionId": "u1"}
    url = ok(ih.post("/thirdparty/patientConsultations/ih", asked))["h5Url"]
    with chromium() as browser:
        ctx = browser.new_context(**PHONE)
        page = ctx.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        assert page.goto(url).status == 200
        card = page.locator("[data-testid=consultation]")
        assert card.count() == 1 and card.get_attribute("data-status") == "requested"
        assert page.locator("[data-testid=consultation-status]").inner_text() == "已申请"
        assert "李教授" in card.inner_text() and "肺结节会诊" in card.inner_text()
        # Styled by the film pages' stylesheet under their strict policy: nothing refused.
        assert page.eval_on_selector(".bar", "e => getComputedStyle(e).backgroundColor") == "rgb(21, 101, 192)"
        assert page.eval_on_selector(".card", "e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
        assert refused == []
        en = browser.new_context(**{**PHONE, "locale": "en-US", "extra_http_headers": {"Accept-Language": "en-US"}})
        other = en.new_page()
        other.goto(url)
        assert other.locator("h1").inner_text() == "My consultations"
        assert other.locator("[data-testid=consultation-status]").inner_text() == "Requested"
