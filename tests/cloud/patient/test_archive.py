"""The patient's own archive (/h5/me) over real HTTP, on SQLite and PostgreSQL: sign-in by phone and
SMS code, real-name verification, family members, my studies from two hospitals, opening one
without re-verifying, shares from the archive, who looked, and every code of the issue."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from yingyun.cloud.patient.archive import id_card_well_formed
from yingyun.storage import schema as s

from ...support.partners import PartnerClient
from .filmdata import add_study
from .test_pages import client

PHONE = "13812348000"
ID_SELF = "11010519491231002X"  # 张三丰, as filmdata registers him
ID_CHILD = "110105201001011234"  # checksum fixed below
OTHER_PHONE = "13900001111"


def with_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


CHILD = with_check("11010520100101123")
STRANGER = with_check("32010219800101456")


def form_csrf(html: str, action: str) -> str:
    m = re.search(r'action="' + re.escape(action) + r'"[^>]*>\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"',
                  html)
    assert m, html[:3000]
    return m.group(1)


def code_of(resp: httpx.Response) -> str | None:
    m = re.search(r'data-code="(\d+)"', resp.text)
    return m.group(1) if m else None


def send_code(c: httpx.Client, phone: str = PHONE) -> httpx.Response:
    page = c.get("/h5/me")
    return c.post("/h5/me/send-code", data={"phone": phone, "csrf": form_csrf(page.text, "/h5/me/send-code")})


def sign_in(c: httpx.Client, sms, phone: str = PHONE, *, remember: bool = False, code: str | None = None):
    page = send_code(c, phone)
    assert page.status_code == 200, page.text
    data = {"phone": phone, "code": code or sms.last_code(phone), "csrf": form_csrf(page.text, "/h5/me/sign-in")}
    if remember:
        data["remember"] = "1"
    return c.post("/h5/me/sign-in", data=data)


def verify_name(c: httpx.Client, name: str, id_card: str) -> httpx.Response:
    page = c.get("/h5/me/verify")
    return c.post("/h5/me/verify", data={"name": name, "id_card": id_card,
                                         "csrf": form_csrf(page.text, "/h5/me/verify")})


def add_member(c: httpx.Client, name: str, id_card: str, relationship: str = "child") -> httpx.Response:
    page = c.get("/h5/me/members")
    return c.post("/h5/me/members", data={"name": name, "id_card": id_card, "relationship": relationship,
                                          "csrf": form_csrf(page.text, "/h5/me/members")})


def cards(c: httpx.Client) -> dict[str, list[str]]:
    """person -> the study UIDs shown for them, in page order."""
    page = c.get("/h5/me/studies")
    assert page.status_code == 200, page.text
    out: dict[str, list[str]] = {}
    for person, body in re.findall(r'data-person="([^"]+)">(.*?)</section>', page.text, re.S):
        out[person] = re.findall(r'data-testid="study-card" data-study-uid="([^"]*)"', body)
    return out


@pytest.fixture
def second_hospital(runtime, app_server):
    t = runtime.tenancy
    t.add_hospital(hospital_id="h2", name="第二医院", union_id="u1")
    _, token = t.add_partner(app_id="ris-h2", hospitals=["h2"])
    c = PartnerClient(app_server.url, "ris-h2", token)
    yield c
    c.close()


def register(ris, study_id: str, *, name: str, phone: str | None, id_card: str | None,
             date: str = "2026-11-20 09:30:00", uid: str | None = None) -> str:
    study_uid = uid or f"1.2.826.0.1.3680043.10.1404.{abs(hash((study_id, ris.app_id))) % 10**12}"
    body = {"patientId": "P-" + study_id, "patientName": name, "patientSex": "M", "studyId": study_id,
            "accessNumber": "A-" + study_id, "modality": "CT", "patientAge": "45", "patientAgeUnit": "Y",
            "bodyPart": "胸部", "studyDesc": "胸部CT平扫", "studyDate": date, "studyUid": study_uid,
            "examDept": "放射科"}
    if phone:
        body["phoneNum"] = phone
    if id_card:
        body["idCardNum"] = id_card
    res = ris.post("/ris/study/add", body)
    assert res["code"] == 0, res
    return study_uid


def test_id_card_checksum():
    assert id_card_well_formed(ID_SELF) and id_card_well_formed(ID_SELF.lower()) and id_card_well_formed(CHILD)
    assert not id_card_well_formed(ID_SELF[:-1] + "1")
    assert not id_card_well_formed("1101051949123100")
    assert not id_card_well_formed("A1010519491231002X")


def test_sign_in_verify_members_and_my_studies_across_two_hospitals(server, ris, second_hospital, runtime, sms):
    mine_h1 = register(ris, "S1", name="张三丰", phone=PHONE, id_card=ID_SELF, date="2026-11-01 09:00:00")
    mine_h2 = register(second_hospital, "T1", name="张三丰", phone=None, id_card=ID_SELF, date="2026-11-25 09:00:00")
    phone_only = register(ris, "S2", name="张三丰", phone=PHONE, id_card=None, date="2026-10-01 09:00:00")
    child_h2 = register(second_hospital, "T2", name="张小明", phone=OTHER_PHONE, id_card=CHILD)
    stranger = register(ris, "S3", name="李四", phone=OTHER_PHONE, id_card=STRANGER)
    with client(server) as c:
        assert c.get("/h5/me/studies").headers["location"] == "/h5/me"  # signed out
        r = sign_in(c, sms)
        assert r.status_code == 303 and r.headers["location"] == "/h5/me/verify"  # first sign-in asks for the name
        cookie = r.headers["set-cookie"]
        assert "yy_me=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        assert "Max-Age" not in cookie and "expires" not in cookie.lower()  # no "stay signed in": browser session
        assert "Path=/h5/me" in cookie
        # Before verification: only the studies with this phone and no ID card.
        assert cards(c) == {"self": [phone_only]}
        r = verify_name(c, "李四", ID_SELF)  # the hospitals recorded 张三丰 with this ID
        assert r.status_code == 409 and code_of(r) == "50006"
        r = verify_name(c, "张三丰", ID_SELF[:-1] + "3")
        assert r.status_code == 400 and code_of(r) == "50003"
        r = verify_name(c, "张 三丰", ID_SELF.lower())
        assert r.status_code == 303
        # Newest first, both hospitals, nobody else's.
        assert cards(c) == {"self": [mine_h2, mine_h1, phone_only]}
        r = add_member(c, "张小明", CHILD)
        assert r.status_code == 303
        shown = cards(c)
        member = next(k for k in shown if k != "self")
        assert shown == {"self": [mine_h2, mine_h1, phone_only], member: [child_h2]}
        assert stranger not in str(shown)
        page = c.get("/h5/me/studies").text
        assert "第一医院" in page and "第二医院" in page and "张*丰" in page and "张*明" in page
        assert ID_SELF not in page and PHONE not in page and CHILD not in page
        assert page.count('data-ready="0"') == 4  # no report yet anywhere
        # Removing the member ends access at once.
        members = c.get("/h5/me/members").text
        pk = re.search(r'data-member="(\d+)"', members).group(1)
        r = c.post(f"/h5/me/members/{pk}/remove",
                   data={"csrf": form_csrf(members, f"/h5/me/members/{pk}/remove")})
        assert r.status_code == 303
        assert cards(c) == {"self": [mine_h2, mine_h1, phone_only]}
        r = c.post(f"/h5/me/members/{pk}/remove",
                   data={"csrf": form_csrf(members, f"/h5/me/members/{pk}/remove")})
        assert r.status_code == 404 and code_of(r) == "50002"
    # Nothing identifying at rest in the archive's tables.
    with runtime.db.read() as conn:
        rows = repr([*conn.execute(select(s.patient_accounts)).all(), *conn.execute(select(s.patient_members)).all()])
    for secret in (PHONE, ID_SELF, CHILD, "张三丰", "张小明"):
        assert secret not in rows


def test_new_and_deleted_studies_show_on_the_next_load(server, ris, sms):
    first = register(ris, "S1", name="张三丰", phone=PHONE, id_card=None)
    with client(server) as c:
        sign_in(c, sms)
        assert cards(c) == {"self": [first]}
        second = register(ris, "S2", name="张三丰", phone=PHONE, id_card=None, date="2026-11-30 08:00:00")
        page = c.get("/h5/me/studies").text
        assert '<meta http-equiv="refresh"' in page  # the page reloads itself
        assert cards(c) == {"self": [second, first]}
        res = ris.post("/ris/study/delete", {"patientId": "P-S1", "studyId": "S1", "accessNumber": "A-S1",
                                             "studyUid": first})
        assert res["code"] == 0, res
        assert cards(c) == {"self": [second]}


def test_stay_signed_in_is_30_days_only_when_asked(server, ris, sms):
    with client(server) as c:
        r = sign_in(c, sms, remember=True)
        assert r.status_code == 303 and "Max-Age=2592000" in r.headers["set-cookie"]


def test_sign_in_codes(server, sms, runtime):
    with client(server) as c:
        page = send_code(c)
        code = sms.last_code(PHONE)
        csrf = form_csrf(page.text, "/h5/me/sign-in")
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(4):
            r = c.post("/h5/me/sign-in", data={"phone": PHONE, "code": wrong, "csrf": csrf})
            assert r.status_code == 400 and code_of(r) == "20001"
        r = c.post("/h5/me/sign-in", data={"phone": PHONE, "code": wrong, "csrf": csrf})
        assert r.status_code == 429 and code_of(r) == "20004"
    # The lock is the phone's: another browser is refused even with the right code.
    with client(server) as c2:
        page = c2.get("/h5/me")
        r = c2.post("/h5/me/sign-in", data={"phone": PHONE, "code": code,
                                            "csrf": form_csrf(page.text, "/h5/me/sign-in")})
        assert r.status_code == 429 and code_of(r) == "20004" and "yy_me" not in r.headers.get("set-cookie", "")
    with client(server) as c3:
        with runtime.db.write() as conn:
            conn.execute(s.phone_guards.delete())
            conn.execute(s.phone_codes.update().values(expires_at=0.0))
        page = c3.get("/h5/me")
        r = c3.post("/h5/me/sign-in", data={"phone": PHONE, "code": code,
                                            "csrf": form_csrf(page.text, "/h5/me/sign-in")})
        assert r.status_code == 400 and code_of(r) == "20002"


@pytest.mark.parametrize("film_options", [{"sms_daily_limit": 2, "sms_resend_s": 0.0}])
def test_daily_send_limit_20003(server, sms):
    with client(server) as c:
        assert send_code(c).status_code == 200
        assert send_code(c).status_code == 200
        r = send_code(c)
        assert r.status_code == 429 and code_of(r) == "20003"
    assert len(sms.sent) == 2


def test_a_form_without_its_token_is_refused(server, sms):
    with client(server) as c:
        r = c.post("/h5/me/send-code", data={"phone": PHONE, "csrf": "0" * 64})
        assert r.status_code == 403 and sms.sent == []


def test_member_limit_50001_and_duplicates(server, ris, sms):
    with client(server) as c:
        sign_in(c, sms)
        for i in range(10):
            assert add_member(c, f"成员{i}", with_check(f"1101052010010{i:03d}1")).status_code == 303
        r = add_member(c, "再一个", with_check("11010520100109991"))
        assert r.status_code == 409 and code_of(r) == "50001"


def test_member_name_must_match_the_hospitals_50006(server, ris, sms):
    register(ris, "S9", name="张小明", phone=OTHER_PHONE, id_card=CHILD)
    with client(server) as c:
        sign_in(c, sms)
        r = add_member(c, "王五", CHILD)
        assert r.status_code == 409 and code_of(r) == "50006"
        r = add_member(c, "张小明", CHILD[:-1] + ("0" if CHILD[-1] != "0" else "1"))
        assert r.status_code == 400 and code_of(r) == "50003"
        assert add_member(c, "张小明", CHILD).status_code == 303
        r = add_member(c, "张小明", CHILD)
        assert r.status_code == 409 and "已是" in r.text


def test_bind_a_member_by_scanning_5_a_day_50004(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", study_id="K1", phone=OTHER_PHONE, id_card=CHILD, name="张小明",
                   series_sizes=(), report=False)
    with client(server) as c:
        sign_in(c, sms)

        def scan(answer: str) -> httpx.Response:
            page = c.get("/h5/me/members")
            return c.post("/h5/me/members/scan", data={"qr": st.qr_url, "answer": answer, "relationship": "child",
                                                       "csrf": form_csrf(page.text, "/h5/me/members/scan")})

        for _ in range(4):
            r = scan("0000")
            assert r.status_code == 400 and "后四位不正确" in r.text
        assert scan(OTHER_PHONE[-4:]).status_code == 303
        assert st.study_uid in str(cards(c))
        r = scan(OTHER_PHONE[-4:])
        assert r.status_code == 429 and code_of(r) == "50004"


def test_open_from_the_archive_without_verifying_again_and_share(server, ris, runtime, tmp_path, sms, film):
    st = add_study(ris, runtime, tmp_path / "d", study_id="S1", phone=PHONE, id_card=None, series_sizes=(2,))
    with client(server) as c:
        sign_in(c, sms)
        page = c.get("/h5/me/studies").text
        pk = re.search(r'href="/h5/me/studies/(\d+)/open"', page).group(1)
        r = c.get(f"/h5/me/studies/{pk}/open")
        assert r.status_code == 303 and r.headers["location"] == f"/h5/s/{st.token}"
        report = c.get(f"/h5/s/{st.token}")
        assert 'data-testid="conclusion"' in report.text  # no phone digits asked
        assert c.get(f"/h5/s/{st.token}/viewer").status_code == 200
        # Share with a password, 1 hour.
        r = c.post("/h5/me/shares", data={"csrf": form_csrf(page, "/h5/me/shares"), "study": pk, "hours": "1",
                                          "password": "pw1234"})
        assert r.status_code == 200 and 'data-testid="share-qr"' in r.text and 'src="data:image/png;base64,' in r.text
        url = re.search(r'data-testid="share-url" value="([^"]+)"|value="([^"]+)" data-testid="share-url"',
                        r.text.replace('readonly value', 'value'))
        share_url = next(g for g in url.groups() if g)
        assert share_url.startswith(server.url + "/h5/share/")
        path = share_url[len(server.url):]
    with client(server) as other:  # another browser: the share asks for its password
        page = other.get(path)
        assert page.status_code == 200 and 'type="password"' in page.text
        r = other.post(path + "/verify", data={"answer": "pw1234", "csrf": form_csrf(page.text, path + "/verify")})
        assert r.status_code == 303
        assert 'data-testid="conclusion"' in other.get(path).text
    film.audit.flush()
    with client(server, cookies=c.cookies) as c:
        access = c.get(f"/h5/me/studies/{pk}/access").text
        assert "您分享的链接" in access and "您本人" in access and "查看了报告" in access
        assert "李医生" not in access and "王主任" not in access
        shares = c.get("/h5/me/shares").text
        share_pk = re.search(r'data-share="(\d+)"', shares).group(1)
        r = c.post(f"/h5/me/shares/{share_pk}/revoke",
                   data={"csrf": form_csrf(shares, f"/h5/me/shares/{share_pk}/revoke")})
        assert r.status_code == 303
        assert 'data-share="' not in c.get("/h5/me/shares").text
    with client(server) as other:
        assert other.get(path).status_code == 404  # revoked: refused at once


def test_someone_elses_study_does_not_open(server, ris, sms):
    register(ris, "S1", name="李四", phone=OTHER_PHONE, id_card=None)
    with client(server) as c:
        sign_in(c, sms)
        assert cards(c) == {"self": []}
        with pytest.raises(AssertionError):
            form_csrf(c.get("/h5/me/studies").text, "/h5/me/studies/1/open")
        for pk in range(1, 4):
            r = c.get(f"/h5/me/studies/{pk}/open")
            assert r.status_code == 303 and r.headers["location"] == "/h5/me/studies"
            assert "yy_sid" not in r.headers.get("set-cookie", "")


def test_open_in_the_mini_program_when_the_partner_has_one(server, ris, runtime, sms):
    register(ris, "S1", name="张三丰", phone=PHONE, id_card=None)
    runtime.tenancy.add_partner(app_id="ih", hospitals=["h1"], mini_app_id="wx123", mini_path="pages/r?s={studyId}")
    with client(server) as c:
        sign_in(c, sms)
        page = c.get("/h5/me/studies").text
        assert 'href="weixin://dl/business/?appid=wx123&amp;path=pages%2Fr&amp;query=s%3DS1"' in page


def share_path(c: httpx.Client, server, pk: str, **fields: str) -> str:
    page = c.get("/h5/me/studies").text
    r = c.post("/h5/me/shares", data={"csrf": form_csrf(page, "/h5/me/shares"), "study": pk, "hours": "24",
                                      **fields})
    assert r.status_code == 200, r.text
    url = re.search(r'value="(http[^"]+/h5/share/[^"]+)"', r.text).group(1)
    return url[len(server.url):]


def test_shares_of_the_images_only_or_the_report_only(server, ris, runtime, tmp_path, sms):
    st = add_study(ris, runtime, tmp_path / "d", study_id="S1", phone=PHONE, id_card=None, series_sizes=(2,))
    with client(server) as c:
        sign_in(c, sms)
        pk = re.search(r'href="/h5/me/studies/(\d+)/open"', c.get("/h5/me/studies").text).group(1)
        images = share_path(c, server, pk, scope="images")
        report = share_path(c, server, pk, scope="report")
        both = share_path(c, server, pk)
        r = c.post("/h5/me/shares", data={"csrf": form_csrf(c.get("/h5/me/studies").text, "/h5/me/shares"),
                                          "study": pk, "hours": "24", "scope": "everything"})
        assert r.status_code == 303  # an unknown scope makes no share
    with runtime.db.read() as conn:
        assert conn.execute(select(s.links.c.share_scope).where(s.links.c.kind == "share")
                            .order_by(s.links.c.pk)).scalars().all() == ["images", "report", None]
    with client(server) as other:
        viewer = other.get(both + "/viewer").text
        img = re.search(r'/img/\d+/\d+/\d+\.jpg', viewer).group(0)
        assert 'data-testid="conclusion"' in other.get(both).text and other.get(both + img).status_code == 200
        # Images only: the report page leads to the viewer; the report and its PDF are refused.
        r = other.get(images)
        assert r.status_code == 303 and r.headers["location"] == images + "/viewer"
        assert other.get(images + "/viewer").status_code == 200
        assert other.get(images + img).status_code == 200
        r = other.get(images + "/download/report.pdf")
        assert r.status_code == 303 and r.headers["location"] == images + "/viewer"
        # Report only: the viewer leads to the report; images are refused.
        assert 'data-testid="conclusion"' in other.get(report).text
        r = other.get(report + "/viewer")
        assert r.status_code == 303 and r.headers["location"] == report
        assert other.get(report + img).status_code == 403
        r = other.get(report + "/download/images.zip")
        assert r.status_code in (303, 403) and "zip" not in r.headers.get("content-type", "")
    assert st.token not in images + report


@pytest.mark.parametrize("film_options", [{"sms_resend_s": 0.0}])
def test_sign_out_and_server_side_expiry(server, ris, runtime, sms):
    register(ris, "S1", name="张三丰", phone=PHONE, id_card=None)
    with client(server) as c:
        sign_in(c, sms)
        page = c.get("/h5/me/studies")
        assert page.status_code == 200
        r = c.post("/h5/me/sign-out", data={"csrf": form_csrf(page.text, "/h5/me/sign-out")})
        assert r.status_code == 303 and 'yy_me=""' in r.headers["set-cookie"]
    with client(server, cookies=c.cookies) as again:  # the old cookie, replayed: the session is over
        assert again.get("/h5/me/studies").headers["location"] == "/h5/me"
    with client(server) as c:
        sign_in(c, sms)
        assert c.get("/h5/me/studies").status_code == 200
        with runtime.db.write() as conn:
            conn.execute(s.patient_sessions.update().values(expires_at=0.0))
        assert c.get("/h5/me/studies").headers["location"] == "/h5/me"
