"""The cloud-film pages over real HTTP (httpx), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
import time
import zipfile

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from yingyun.cloud.patient import audit as audit_mod
from yingyun.cloud.patient import mint_partner_link, viewer_path
from yingyun.settings import parse_proxies
from yingyun.storage import schema as s

from .filmdata import add_study

PHONE4 = "8000"


def csrf(html: str, action_suffix: str = "/verify") -> str:
    m = re.search(r'action="[^"]*' + re.escape(action_suffix)
                  + r'"[^>]*>\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"', html)
    assert m, html[:2000]
    return m.group(1)


def client(server, **kw) -> httpx.Client:
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=30, **kw)


def verify(c: httpx.Client, base: str, answer: str) -> httpx.Response:
    page = c.get(base)
    return c.post(base + "/verify", data={"answer": answer, "csrf": csrf(page.text)})


@pytest.fixture
def study(ris, runtime, tmp_path):
    return add_study(ris, runtime, tmp_path / "dicom", series_sizes=(6, 3), pdf=True)


def test_verify_wrong_then_right_reads_report(server, study, runtime):
    with client(server) as c:
        r = verify(c, f"/h5/s/{study.token}", "1234")
        assert r.status_code == 400
        assert "还可尝试 4 次" in r.text and 'data-code="20001"' in r.text
        r = verify(c, f"/h5/s/{study.token}", PHONE4)
        assert r.status_code == 303 and r.headers["location"] == f"/h5/s/{study.token}"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert f"Path=/h5/s/{study.token}" in cookie
        page = c.get(f"/h5/s/{study.token}")
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="findings">双肺纹理清晰' in html
    assert 'data-testid="conclusion">胸部CT平扫未见明显异常。' in html
    assert "张*丰" in html and "三丰" not in html
    assert "第一医院" in html and "45岁" in html and "男" in html and "李医生" in html and "王主任" in html
    assert 'data-testid="open-viewer"' in html and 'data-testid="pdf-report"' in html
    assert len(page.content) < 100_000


def test_session_is_bound_to_its_link(server, study, ris, runtime, tmp_path):
    other = add_study(ris, runtime, tmp_path / "d2", study_id="S2", series_sizes=(2,))
    with client(server) as c:
        assert verify(c, f"/h5/s/{study.token}", PHONE4).status_code == 303
        sid = c.cookies.get("yy_sid")
    # The same session cookie presented on another link's pages opens nothing.
    with client(server) as c2:
        r = c2.get(f"/h5/s/{other.token}", headers={"Cookie": f"yy_sid={sid}"})
        assert 'name="answer"' in r.text and "data-testid=\"conclusion\"" not in r.text
        img = c2.get(f"/h5/s/{other.token}/viewer", headers={"Cookie": f"yy_sid={sid}"})
        assert 'data-testid="viewer-image"' not in img.text


def test_id_card_when_no_phone(server, ris, runtime, tmp_path):
    st = add_study(ris, runtime, tmp_path / "d", study_id="S9", phone=None, id_card="11010519491231002x",
                   series_sizes=(1,))
    with client(server) as c:
        page = c.get(f"/h5/s/{st.token}")
        assert "身份证" in page.text
        assert verify(c, f"/h5/s/{st.token}", "8000").status_code == 400
        assert verify(c, f"/h5/s/{st.token}", "002x").status_code == 303


def test_csrf_token_required(server, study):
    with client(server) as c:
        c.get(f"/h5/s/{study.token}")
        r = c.post(f"/h5/s/{study.token}/verify", data={"answer": PHONE4, "csrf": "0" * 64})
        assert r.status_code == 403
        # A token from another browser (another pre-session cookie) does not work either.
        with client(server) as other:
            token = csrf(other.get(f"/h5/s/{study.token}").text)
        r = c.post(f"/h5/s/{study.token}/verify", data={"answer": PHONE4, "csrf": token})
        assert r.status_code == 403
        assert "yy_sid" not in c.cookies


def test_attempt_limit_locks_link_for_everyone_and_doubles(server, study, runtime):
    with client(server) as c:
        for _ in range(4):
            assert verify(c, f"/h5/s/{study.token}", "0000").status_code == 400
        r = verify(c, f"/h5/s/{study.token}", "0000")
        assert r.status_code == 429
        assert 'data-code="20004"' in r.text and "锁定" in r.text
    # Another browser, even with the right answer, is locked out too.
    with client(server) as c2:
        r = c2.get(f"/h5/s/{study.token}")
        assert r.status_code == 429 and 'name="answer"' not in r.text
        r = c2.post(f"/h5/s/{study.token}/verify", data={"answer": PHONE4, "csrf": "x"})
        assert r.status_code in (403, 429)
    with runtime.db.read() as conn:
        g = conn.execute(select(s.link_guards)).one()
    assert g.lock_level == 1 and 14 * 60 < g.locked_until - time.time() <= 15 * 60
    # Expire the lock by hand; five more failures lock for twice as long.
    with runtime.db.write() as conn:
        conn.execute(s.link_guards.update().values(locked_until=time.time() - 1))
    with client(server) as c:
        for _ in range(5):
            r = verify(c, f"/h5/s/{study.token}", "0000")
        assert r.status_code == 429
    with runtime.db.read() as conn:
        g = conn.execute(select(s.link_guards)).one()
    assert g.lock_level == 2 and 29 * 60 < g.locked_until - time.time() <= 30 * 60
    # After the lock, a correct answer resets the counter.
    with runtime.db.write() as conn:
        conn.execute(s.link_guards.update().values(locked_until=time.time() - 1))
    with client(server) as c:
        assert verify(c, f"/h5/s/{study.token}", PHONE4).status_code == 303
    with runtime.db.read() as conn:
        g = conn.execute(select(s.link_guards)).one()
    assert g.lock_level == 0 and g.failures == 0


def test_pending_and_deleted_and_unknown(server, ris, runtime, tmp_path, study):
    res = ris.post("/ris/getStudyQR", {"studyId": "NOT-YET"})
    token = res["data"]["qrUrl"].rsplit("/", 1)[1]
    with client(server) as c:
        r = c.get(f"/h5/s/{token}")
        assert r.status_code == 200 and "尚未" in r.text and 'name="answer"' not in r.text
        r = c.get(f"/h5/s/{'A' * 43}")
        assert r.status_code == 404 and "重新扫描" in r.text
        r = c.get(f"/h5/p/{study.token}")  # a QR token under another kind's path
        assert r.status_code == 404
        assert verify(c, f"/h5/s/{study.token}", PHONE4).status_code == 303
        res = ris.post("/ris/study/delete", {"patientId": "P1", "studyId": study.study_id,
                                             "accessNumber": "A-" + study.study_id, "studyUid": study.study_uid})
        assert res["code"] == 0, res
        r = c.get(f"/h5/s/{study.token}")  # even with a live session
        assert r.status_code == 410 and "撤销" in r.text
        assert "20" not in re.sub(r"<[^>]+>", "", r.text.split("<main")[1])  # no codes in words
        for secret in ("张", "双肺", study.study_id):
            assert secret not in r.text
        assert c.get(f"/h5/s/{study.token}/viewer").status_code == 410


def test_viewer_images_and_audit(server, study, runtime, film):
    with client(server, headers={"User-Agent": "film-test/1.0"}) as c:
        assert c.get(f"/h5/s/{study.token}/viewer").status_code == 200  # not verified: the form
        assert c.get(f"/h5/s/{study.token}/img/1/1/0.jpg").status_code == 403
        assert verify(c, f"/h5/s/{study.token}", PHONE4).status_code == 303
        v = c.get(f"/h5/s/{study.token}/viewer")
        assert v.status_code == 200 and 'data-testid="viewer-image"' in v.text
        urls = re.findall(r'src="(/h5/s/[^"]+\.jpg)"', v.text)
        first = c.get(urls[0])
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        im = Image.open(io.BytesIO(first.content))
        assert im.size == (128, 128) and im.getextrema()[1] > 100
        lung = c.get(urls[0] + "?p=lung")
        assert lung.status_code == 200 and lung.content != first.content
        assert c.get(urls[0] + "?p=nonsense").status_code == 400
        assert c.get(urls[0] + "?w=40,0").status_code == 400
        info = c.get(urls[0].replace("/img/", "/info/").rsplit("/", 2)[0] + "/0.json")
        assert info.status_code == 200 and info.json()["window"]["width"] == 400
    film.audit.flush()
    with runtime.db.read() as conn:
        rows = audit_mod.query(conn, study_uid=study.study_uid)
    kinds = [r["access"] for r in rows]
    assert "verify-ok" in kinds and "view-viewer" in kinds and kinds.count("image") >= 2
    img = next(r for r in rows if r["access"] == "image")
    assert img["client"] == "127.0.0.1" and img["userAgent"] == "film-test/1.0" and img["studyId"] == study.study_id


def test_no_other_studys_images_through_a_link(server, study, ris, runtime, tmp_path):
    other = add_study(ris, runtime, tmp_path / "d2", study_id="S2", series_sizes=(2,))
    with runtime.db.read() as conn:
        foreign = conn.execute(select(s.instances.c.pk, s.instances.c.version)
                               .where(s.instances.c.study_uid == other.study_uid)).first()
    with client(server) as c:
        verify(c, f"/h5/s/{study.token}", PHONE4)
        assert c.get(f"/h5/s/{study.token}/img/{foreign.pk}/{foreign.version}/0.jpg").status_code == 404
        assert c.get(f"/h5/s/{study.token}/info/{foreign.pk}/0.json").status_code == 404
        assert c.get(f"/h5/s/{study.token}/img/999999/1/0.jpg").status_code == 404


def test_forwarded_for_ignored_unless_proxy_trusted(ris, runtime, study, server, film):
    with client(server, headers={"X-Forwarded-For": "203.0.113.9"}) as c:
        verify(c, f"/h5/s/{study.token}", PHONE4)
    film.audit.flush()
    with runtime.db.read() as conn:
        rows = audit_mod.query(conn, study_uid=study.study_uid)
    # No proxy is trusted here: the socket's address counts, not the header.
    assert rows and {r["client"] for r in rows} == {"127.0.0.1"}


@pytest.mark.parametrize("film_options", [{"trusted_proxies": parse_proxies(["127.0.0.0/8"])}])
def test_forwarded_for_from_trusted_proxy(ris, runtime, study, server, film):
    with client(server, headers={"X-Forwarded-For": "203.0.113.9"}) as c:
        verify(c, f"/h5/s/{study.token}", PHONE4)
    film.audit.flush()
    with runtime.db.read() as conn:
        rows = audit_mod.query(conn, study_uid=study.study_uid)
    assert rows and {r["client"] for r in rows} == {"203.0.113.9"}


def test_partner_and_doctor_links(server, study, runtime, ris):
    now = time.time()
    with runtime.db.write() as conn:
        p = mint_partner_link(conn, runtime.vault, hospital_id="h1", study_id=study.study_id, doctor=False, now=now,
                              lifetime=runtime.settings.partner_link_lifetime_s)
        d = mint_partner_link(conn, runtime.vault, hospital_id="h1", study_id=study.study_id, doctor=True, now=now,
                              lifetime=runtime.settings.doctor_link_lifetime_s)
        old = mint_partner_link(conn, runtime.vault, hospital_id="h1", study_id=study.study_id, doctor=True,
                                now=now - 2 * 86400, lifetime=86400)
    assert p.startswith("/h5/p/") and d.startswith("/h5/d/")
    with runtime.db.read() as conn:
        rows = {r.kind: r for r in conn.execute(select(s.links).where(s.links.c.kind.in_(["partner", "doctor"])))}
    assert abs(rows["partner"].expires_at - now - 7 * 86400) < 1
    with client(server) as c:
        r = c.get(p)
        assert r.status_code == 200 and 'data-testid="conclusion"' in r.text  # no verification
        assert c.get(viewer_path(p)).status_code == 200
        assert 'download/dicom.zip' not in c.get(p + "/download").text
        assert c.get(p + "/download/dicom.zip").status_code == 403
        r = c.get(d)
        assert r.status_code == 200 and "医生查看" in r.text and 'data-testid="shares"' not in r.text
        z = c.get(d + "/download/dicom.zip")
        assert z.status_code == 200 and int(z.headers["content-length"]) == len(z.content)
        names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
        assert len(names) == sum(study.series_sizes) + 1 and all(n.endswith(".dcm") for n in names)
        r = c.get(old)
        assert r.status_code == 410 and "过期" in r.text


def test_shares(server, study, runtime):
    base = f"/h5/s/{study.token}"
    with client(server) as c:
        assert c.get(base + "/shares").status_code == 200
        assert 'name="answer"' in c.get(base + "/shares").text
        verify(c, base, PHONE4)
        page = c.get(base + "/shares")
        tok = csrf(page.text, "/shares")
        assert c.post(base + "/shares", data={"csrf": "nope", "days": "7"}).status_code == 403
        r = c.post(base + "/shares", data={"csrf": tok, "days": "1", "password": "pw1234"})
        assert r.status_code == 303
        r = c.post(base + "/shares", data={"csrf": tok, "days": "7"})
        page = c.get(base + "/shares").text
        urls = re.findall(r'data-testid="share-url"[^>]*|value="(http[^"]+)"', page)
        urls = [u for u in urls if u]
        assert len(urls) == 2
    open_share, pw_share = (u.split(server.url)[1] for u in urls)  # newest first
    with client(server) as doc:
        r = doc.get(open_share)
        assert r.status_code == 200 and 'data-testid="conclusion"' in r.text and 'data-testid="shares"' not in r.text
        r = doc.get(pw_share)
        assert 'type="password"' in r.text and 'data-testid="conclusion"' not in r.text and "data-code" not in r.text
        r = doc.post(pw_share + "/verify", data={"answer": "wrong", "csrf": csrf(r.text)})
        assert r.status_code == 400 and "密码不正确" in r.text and 'data-code="20017"' in r.text
        r = doc.post(pw_share + "/verify", data={"answer": "pw1234", "csrf": csrf(doc.get(pw_share).text)})
        assert r.status_code == 303
        assert 'data-testid="conclusion"' in doc.get(pw_share).text
    # Revoke the open share: it then says to scan again.
    with client(server) as c:
        verify(c, base, PHONE4)
        page = c.get(base + "/shares").text
        forms = re.findall(r'action="(/h5/s/[^"]+/revoke)"[^>]*>\s*'
                           r'<input type="hidden" name="csrf" value="([0-9a-f]+)"', page)
        action, tok = forms[0]
        assert c.post(action, data={"csrf": tok}).status_code == 303
    with client(server) as doc:
        r = doc.get(open_share)
        assert r.status_code == 404 and "重新扫描" in r.text
    # Expire the other one: the expired page.
    with runtime.db.write() as conn:
        conn.execute(s.links.update().where(s.links.c.kind == "share").values(expires_at=time.time() - 1))
    with client(server) as doc:
        r = doc.get(pw_share)
        assert r.status_code == 410 and "过期" in r.text and 'data-code="20009"' in r.text


