"""Cloud-film pages whose behaviour does not depend on the database back-end
(headers, languages, rendering, downloads): SQLite only, to keep the suite
fast. Everything that reads or writes link state runs on both back-ends in
test_pages.py and test_verify_sms.py."""

from __future__ import annotations

import io
import re
import time
import zipfile

import pytest
from PIL import Image
from pypdf import PdfReader

from yingyun.cloud.patient import SECURITY_HEADERS
from yingyun.cloud.patient import audit as audit_mod
from yingyun.storage.db import default_sqlite_url

from .filmdata import add_study
from .test_pages import PHONE4, client, verify


@pytest.fixture
def database_url(tmp_path):
    return default_sqlite_url(tmp_path / "data")


@pytest.fixture
def study(ris, runtime, tmp_path):
    return add_study(ris, runtime, tmp_path / "dicom", series_sizes=(6, 3), pdf=True)


def test_landing_shows_nothing_before_verification(server, study):
    with client(server) as c:
        r = c.get(f"/h5/s/{study.token}")
    assert r.status_code == 200
    assert 'name="answer"' in r.text and 'type="submit"' in r.text
    for secret in ("张", "三丰", "胸部", "双肺", "未见", "李医生", study.study_id, study.study_uid, "8000"):
        assert secret not in r.text
    assert "手机号" in r.text  # the phone method is the default
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert "<script>" not in r.text and "style=" not in r.text


PAGE_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy",
                "permissions-policy", "cross-origin-opener-policy")


def test_security_headers_on_every_h5_response(server, study):
    token = study.token
    with client(server) as c:
        answers = {
            "unknown page": c.get("/h5/nothing/here/at/all/x"),
            "bare prefix": c.get("/h5"),
            "unknown link": c.get("/h5/s/" + "x" * 43),
            "wrong method": c.delete(f"/h5/s/{token}"),
            "wrong method, static": c.post("/h5/static/film.css"),
            "not a number": c.get(f"/h5/s/{token}/img/abc/1/0.jpg"),
            "static file": c.get("/h5/static/" + next(iter(_static_names()))),
            "consultation page": c.get("/h5/consultations/" + "y" * 43),
            "page": c.get(f"/h5/s/{token}"),
        }
        api = c.get("/healthz")
    assert answers["unknown page"].status_code == 404 and answers["wrong method"].status_code == 405
    assert answers["not a number"].status_code == 422 and answers["static file"].status_code == 200
    for what, r in answers.items():
        missing = [h for h in PAGE_HEADERS if h not in r.headers]
        assert not missing, (what, r.status_code, missing)
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "strict-transport-security" not in r.headers  # plain HTTP: HSTS means nothing
    # the consultation page is a film page like the others: no inline style, the strict policy
    consultation = answers["consultation page"]
    assert consultation.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert consultation.status_code == 404 and 'data-state="unknown"' in consultation.text
    assert "immutable" in answers["static file"].headers["cache-control"]
    assert "content-security-policy" not in api.headers  # the APIs are not pages


def _static_names():
    from pathlib import Path

    import yingyun.cloud.patient as film

    return sorted(p.name for p in (Path(film.__file__).parent / "static").iterdir() if p.suffix in (".css", ".js"))


def test_english_when_preferred(server, study):
    with client(server) as c:
        r = c.get(f"/h5/s/{study.token}", headers={"Accept-Language": "en-US,en;q=0.9,zh-CN;q=0.8"})
        assert '<html lang="en">' in r.text and "last four digits" in r.text
        r = c.get(f"/h5/s/{study.token}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        assert '<html lang="zh-CN">' in r.text


def test_multiframe_instance_is_a_stack(server, ris, runtime, tmp_path):
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    from yingyun.archive.importer import run_import

    path = get_testdata_file("examples_ybr_color.dcm")  # US, 30 frames, JPEG baseline YBR_FULL_422
    uid = dcmread(path, stop_before_pixels=True).StudyInstanceUID
    ris.post("/ris/study/add", {"patientId": "P1", "patientName": "张三", "patientSex": "F", "studyId": "MF",
                                "accessNumber": "AMF", "modality": "US", "studyUid": uid, "phoneNum": "13900001111"})
    assert run_import(runtime.instances, spool_dir=runtime.settings.spool_dir,
                      hospital_id="h1", paths=[path], out=io.StringIO())["stored"] == 1
    token = ris.post("/ris/getStudyQR", {"studyId": "MF"})["data"]["qrUrl"].rsplit("/", 1)[1]
    with client(server) as c:
        verify(c, f"/h5/s/{token}", "1111")
        html = c.get(f"/h5/s/{token}/viewer").text
        assert 'data-testid="image-index" id="vindex">1/30<' in html
        assert 'data-testid="preset-lung"' not in html  # US has no fixed windows
        m = re.search(r'src="(/h5/s/[^"]+/img/(\d+)/(\d+)/0\.jpg)"', html)
        frames = [c.get(m.group(1).replace("/0.jpg", f"/{k}.jpg")) for k in (0, 15, 29)]
        assert all(f.status_code == 200 for f in frames)
        assert len({f.content for f in frames}) == 3
        assert Image.open(io.BytesIO(frames[1].content)).mode == "RGB"
        assert c.get(m.group(1).replace("/0.jpg", "/30.jpg")).status_code == 400


def test_downloads(server, study, runtime, film):
    base = f"/h5/s/{study.token}"
    with client(server) as c:
        assert c.get(base + "/download/report.pdf").status_code == 200  # the verify form, not the file
        assert c.get(base + "/download/report.pdf").headers["content-type"].startswith("text/html")
        verify(c, base, PHONE4)
        r = c.get(base + "/download/report.pdf")
        assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
        inline = c.get(base + "/report.pdf")
        assert inline.content.startswith(b"%PDF")
        # a response's own policy wins over the pages' (the PDF is framed by the report page)
        assert inline.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'self'"
        assert inline.headers["x-frame-options"] == "SAMEORIGIN"
        page = c.get(base + "/download")
        token = re.search(r'data-csrf="([0-9a-f]+)"', page.text).group(1)
        assert c.post(base + "/download/prepare", headers={"X-CSRF-Token": "bad"}).status_code == 403
        assert c.post(base + "/download/prepare", headers={"X-CSRF-Token": token}).json() == {"total": 9}
        deadline = time.time() + 20
        while time.time() < deadline:
            st = c.get(base + "/download/status").json()
            if st["done"] == st["total"]:
                break
            time.sleep(0.1)
        assert st == {"done": 9, "total": 9}
        z = c.get(base + "/download/images.zip")
        assert z.status_code == 200 and int(z.headers["content-length"]) == len(z.content)
        zf = zipfile.ZipFile(io.BytesIO(z.content))
        assert zf.testzip() is None
        jpgs = [n for n in zf.namelist() if n.endswith(".jpg")]
        assert len(jpgs) == 9 and "index.html" in zf.namelist()
        assert Image.open(io.BytesIO(zf.read(jpgs[0]))).format == "JPEG"
        assert 'src="images/series01/0001.jpg"' in zf.read("index.html").decode()
        assert c.get(base + "/download/dicom.zip").status_code == 403  # patients get JPEGs
    film.audit.flush()
    with runtime.db.read() as conn:
        kinds = [r["access"] for r in audit_mod.query(conn, study_uid=study.study_uid)]
    assert "download-report" in kinds and "download-images" in kinds


def test_generated_pdf_when_hospital_sent_none(server, ris, runtime, tmp_path):
    st = add_study(ris, runtime, tmp_path / "d", study_id="S5", series_sizes=(1,))
    with client(server) as c:
        verify(c, f"/h5/s/{st.token}", PHONE4)
        r = c.get(f"/h5/s/{st.token}/download/report.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert "胸部CT平扫未见明显异常。" in text


def test_report_not_ready(server, ris, runtime, tmp_path):
    st = add_study(ris, runtime, tmp_path / "d", study_id="S6", series_sizes=(), report=False)
    with client(server) as c:
        verify(c, f"/h5/s/{st.token}", PHONE4)
        r = c.get(f"/h5/s/{st.token}")
    assert 'data-testid="report-not-ready"' in r.text and 'data-testid="conclusion"' not in r.text


def test_static_assets_and_no_cdn(server, study):
    with client(server) as c:
        verify(c, f"/h5/s/{study.token}", PHONE4)
        html = c.get(f"/h5/s/{study.token}/viewer").text
        assets = re.findall(r'(?:src|href)="(/h5/static/[^"]+)"', html)
        assert any("viewer.js" in a for a in assets) and any("film.css" in a for a in assets)
        for a in assets:
            r = c.get(a)
            assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        assert "http://" not in html.replace(server.url, "") and "https://" not in html
