"""The report page, its PDF and the error pages (issue 16, item 5).

Body parts and exam names in Chinese; "查看影像" on screen without
scrolling at 390x844 and 844x390 (real Chromium); the report PDF with the
hospital's letterhead, the full name on the patient's own copy only, the
Chinese font embedded and no date-time broken across lines; expired,
deleted and not-ready pages naming the hospital and its phone; a favicon.
"""

from __future__ import annotations

import io
import re
import time

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import update

from yingyun import letterheads
from yingyun.core import bodyparts
from yingyun.core.errors import Invalid, NotFound
from yingyun.core.reportpdf import check_logo
from yingyun.storage import schema as s

from ..browser import chromium
from .filmdata import add_study
from .test_pages import PHONE4, client, csrf, verify

FINDINGS_DATE = "2026-10-01 08:15:00"


def logo_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 60), (21, 101, 192)).save(buf, "PNG")
    return buf.getvalue()


def pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def embedded_fonts(data: bytes) -> list[str]:
    """Base names of the fonts whose program is inside the file."""
    out = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for desc in font.get("/DescendantFonts", []):
                fd = desc.get_object()["/FontDescriptor"].get_object()
                if any(k in fd for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    out.append(str(fd["/FontName"]))
    return out


def share_of(c, base: str, server) -> str:
    page = c.get(base + "/shares")
    c.post(base + "/shares", data={"csrf": csrf(page.text, "/shares"), "days": "7"})
    url = re.search(r'value="(http[^"]+)"', c.get(base + "/shares").text).group(1)
    return url.split(server.url)[1]


def test_body_parts_and_exams_in_chinese():
    assert bodyparts.body_part_zh("CHEST") == "胸部"
    assert bodyparts.body_part_zh("L-Spine") == "腰椎"
    assert bodyparts.body_part_zh("Lumbar Spine") == "腰椎"
    assert bodyparts.body_part_zh("CHEST/ABDOMEN") == "胸腹部"
    assert bodyparts.body_part_zh("Chest + Knee") == "胸部、膝关节"
    assert bodyparts.body_part_zh("胸部") == "胸部"  # the hospital's Chinese as it wrote it
    assert bodyparts.body_part_zh("XYZZY") == "XYZZY"  # unknown: shown, never hidden
    assert bodyparts.body_part_zh(None) == ""
    assert bodyparts.modality_zh("MR") == "磁共振" and bodyparts.modality_zh("ZZ") == "ZZ"
    assert bodyparts.exam_name_zh("胸部CT平扫", modality="CT", body_part="CHEST") == "胸部CT平扫"
    assert bodyparts.exam_name_zh("CT CHEST W/O", modality="CT", body_part="CHEST") == "胸部CT（CT CHEST W/O）"
    assert bodyparts.exam_name_zh("", modality="MR", body_part="KNEE") == "膝关节磁共振"
    assert bodyparts.exam_name_zh("Routine", modality="CT", body_part="XYZZY") == "Routine"


def test_report_page_names_in_chinese(server, ris, runtime, tmp_path):
    st = add_study(ris, runtime, tmp_path / "d", study_id="EN1", series_sizes=(1,), qr=True)
    # The hospital re-sends the record with DICOM codes and English.
    with runtime.db.write() as conn:
        conn.execute(update(s.studies).where(s.studies.c.study_id == "EN1")
                     .values(body_part="CHEST", study_desc="CT CHEST PLAIN", modality="MR"))
    with client(server) as c:
        verify(c, f"/h5/s/{st.token}", PHONE4)
        html = c.get(f"/h5/s/{st.token}").text
        assert "<dd>胸部</dd>" in html and "<dd>胸部磁共振（CT CHEST PLAIN）</dd>" in html and "<dd>磁共振</dd>" in html
        en = c.get(f"/h5/s/{st.token}", headers={"Accept-Language": "en"}).text
        assert "<dd>CHEST</dd>" in en  # English readers get the hospital's own words


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 844, "height": 390}],
                         ids=["390x844", "844x390"])
def test_open_viewer_is_on_screen_without_scrolling(server, ris, runtime, tmp_path, artifacts, viewport):
    st = add_study(ris, runtime, tmp_path / "d", study_id="F1", series_sizes=(3,))
    # A long report pushes the rest of the page far below the fold.
    res = ris.post("/ris/report/add", {"reportNumber": "R-F1", "studyId": "F1", "accessNumber": "A-F1",
                                       "imageDescription": "双肺纹理清晰。\n" * 60, "conclusion": "未见异常。",
                                       "reportDoctor": "李医生", "reportTime": "2026-11-20 10:00:00"})
    assert res["code"] == 0, res
    with chromium() as browser:
        ctx = browser.new_context(viewport=viewport, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
        page = ctx.new_page()
        page.goto(st.qr_url)
        page.fill("input[name=answer]", "8000")
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=conclusion]")
        assert page.evaluate("window.scrollY") == 0
        button = page.locator("[data-testid=open-viewer]")
        box = button.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
        assert "查看影像" in button.inner_text()
        # Nothing covers it: the element at its centre is the button.
        on_top = "([x, y]) => document.elementFromPoint(x, y).closest('[data-testid=open-viewer]') !== null"
        assert page.evaluate(on_top, [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.screenshot(path=str(artifacts / f"cloud-film-report-{viewport['width']}x{viewport['height']}.png"))
        # The page has a favicon of its own (no request for /favicon.ico).
        icon = page.evaluate("document.querySelector('link[rel=icon]').href")
        r = ctx.request.get(icon)
        assert r.status == 200 and r.headers["content-type"].startswith("image/svg+xml")


def test_report_pdf_letterhead_full_name_font_and_datetimes(server, ris, runtime, tmp_path):
    letterheads.set_letterhead(runtime.db, runtime.tenancy, hospital_id="h1", contact_phone="0571-87654321",
                               logo=logo_png())
    st = add_study(ris, runtime, tmp_path / "d", study_id="P1", series_sizes=(1,))
    findings = "".join(f"第{k}次复查对比{FINDINGS_DATE}片，病灶大小稳定。" for k in range(40))
    res = ris.post("/ris/report/add", {"reportNumber": "R-P1", "studyId": "P1", "accessNumber": "A-P1",
                                       "imageDescription": findings, "conclusion": "胸部CT平扫未见明显异常。",
                                       "reportDoctor": "李医生", "reportTime": "2026-11-20 10:00:00",
                                       "auditDoctor": "王主任", "auditTime": "2026-11-20 10:30:00"})
    assert res["code"] == 0, res
    base = f"/h5/s/{st.token}"
    with client(server) as c:
        verify(c, base, PHONE4)
        html = c.get(base).text
        assert 'data-testid="pdf-report"' in html  # offered although the hospital sent no PDF of its own
        r = c.get(base + "/report.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        dl = c.get(base + "/download/report.pdf")
        assert dl.status_code == 200 and dl.content.startswith(b"%PDF")
        share = share_of(c, base, server)
    text = pdf_text(r.content)
    lines = text.splitlines()
    assert "第一医院" in lines[0] or "第一医院" in lines[1]
    assert "0571-87654321" in text and "医学影像检查报告" in text
    assert "张三丰" in text  # the patient's own copy: the full name
    assert "胸部CT平扫未见明显异常。" in text and "李医生" in text and "王主任" in text
    # Every date-time whole on one line: none cut at its space (or anywhere else).
    whole = re.compile(r"2026-10-01[ \u00a0]+08:15:00")
    assert len(whole.findall(text)) == 40, [ln for ln in lines if "2026-10" in ln or "08:15" in ln][:6]
    assert re.search(r"2026-11-20[ \u00a0]+10:00:00", text) and re.search(r"2026-11-20[ \u00a0]+10:30:00", text)
    # The Chinese font travels inside the file; the logo too.
    fonts = embedded_fonts(r.content)
    assert fonts and all("WenQuanYi" in f or "wqy" in f.lower() for f in fonts), fonts
    images = [img for p in PdfReader(io.BytesIO(r.content)).pages for img in p.images]
    assert len(images) >= 2  # the logo and the QR code
    # Someone the patient shared it with gets the masked name.
    with client(server) as doc:
        shared = doc.get(share + "/report.pdf")
    assert shared.status_code == 200
    other = pdf_text(shared.content)
    assert "张*丰" in other and "张三丰" not in other


def test_error_pages_name_the_hospital_and_its_phone(server, ris, runtime, tmp_path):
    st = add_study(ris, runtime, tmp_path / "d", study_id="E1", series_sizes=(1,))
    with client(server) as c:
        verify(c, f"/h5/s/{st.token}", PHONE4)
        share = share_of(c, f"/h5/s/{st.token}", server)
        # No phone configured yet: the hospital's name only.
        with runtime.db.write() as conn:
            conn.execute(update(s.links).where(s.links.c.kind == "share").values(expires_at=time.time() - 1))
        r = c.get(share)
        assert r.status_code == 410 and 'data-code="20009"' in r.text
        assert "如有疑问请联系第一医院" in r.text and 'data-testid="contact-phone"' not in r.text
        letterheads.set_letterhead(runtime.db, runtime.tenancy, hospital_id="h1", contact_phone="0571-87654321")
        r = c.get(share)
        assert '<a href="tel:0571-87654321" data-testid="contact-phone">0571-87654321</a>' in r.text
        # Revoked by the patient.
        with runtime.db.write() as conn:
            conn.execute(update(s.links).where(s.links.c.kind == "share").values(revoked_at=time.time()))
        r = c.get(share)
        assert r.status_code == 404 and 'data-code="20022"' in r.text and "0571-87654321" in r.text
        # Deleted by the hospital.
        res = ris.post("/ris/study/delete", {"patientId": "P1", "studyId": "E1", "accessNumber": "A-E1",
                                             "studyUid": st.study_uid})
        assert res["code"] == 0
        r = c.get(f"/h5/s/{st.token}")
        assert r.status_code == 410 and "撤销" in r.text and "0571-87654321" in r.text
        # An unknown link belongs to no hospital: nothing to name.
        r = c.get("/h5/s/" + "A" * 43)
        assert r.status_code == 404 and 'data-testid="contact"' not in r.text
    # Not ready: no report yet.
    nr = add_study(ris, runtime, tmp_path / "d", study_id="E2", series_sizes=(), report=False)
    with client(server) as c:
        verify(c, f"/h5/s/{nr.token}", PHONE4)
        r = c.get(f"/h5/s/{nr.token}/download/report.pdf")
        assert r.status_code == 404 and "报告尚未出具" in r.text and "0571-87654321" in r.text


def test_letterhead_refuses_what_it_cannot_print(runtime, tenant):
    with pytest.raises(NotFound):
        letterheads.set_letterhead(runtime.db, runtime.tenancy, hospital_id="nope", contact_phone="0571-1")
    with pytest.raises(Invalid, match="contact phone"):
        letterheads.set_letterhead(runtime.db, runtime.tenancy, hospital_id="h1", contact_phone="call us")
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")
    with pytest.raises(Invalid, match="PNG or JPEG"):
        check_logo(gif.getvalue())
    with pytest.raises(Invalid, match="not a picture"):
        check_logo(b"\x89PNG not really")
    with pytest.raises(Invalid, match="at most"):
        check_logo(b"\0" * (600 * 1024))
    assert letterheads.set_letterhead(runtime.db, runtime.tenancy, hospital_id="h1", logo=logo_png()) is True
    assert letterheads.describe(runtime.db, runtime.tenancy, hospital_id="h1")["contactPhone"] is None
    letterheads.set_letterhead(runtime.db, runtime.tenancy, hospital_id="h1", contact_phone="400-800-1234 转 2")
    info = letterheads.describe(runtime.db, runtime.tenancy, hospital_id="h1")
    assert info["contactPhone"] == "400-800-1234 转 2" and info["logoBytes"] > 0  # the logo kept
    letterheads.set_letterhead(runtime.db, runtime.tenancy, hospital_id="h1", clear_logo=True)
    assert letterheads.describe(runtime.db, runtime.tenancy, hospital_id="h1")["logoBytes"] == 0
