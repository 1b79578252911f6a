"""The hospital's copy of a report as PDF (issue 15 item 7): `GET /api/v1/studies/{studyUid}/report.pdf`.

Read back with pypdf: the letterhead, the patient's full name and numbers, the exam, findings, conclusion,
both doctors and their times, the Chinese font embedded, the QR code to the study's cloud film; audited;
refused out of scope (30009), for an unknown study (30008), before a report (30003) and without a session.
"""

from __future__ import annotations

import io
import re

from pypdf import PdfReader
from sqlalchemy import select

from yingyun import letterheads
from yingyun.storage import schema as s

from ..browser import decode_qr
from ..patient.test_film_report import embedded_fonts, logo_png, pdf_text
from .conftest import REPORT, STUDY, STUDY_UID

PDF = f"/api/v1/studies/{STUDY_UID}/report.pdf"


def qr_texts(data: bytes) -> list[str]:
    out = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for img in page.images:
            png = io.BytesIO()
            img.image.convert("L").save(png, "PNG")
            try:
                out.append(decode_qr(png.getvalue()))
            except AssertionError:
                continue  # the logo
    return out


def test_the_hospital_copy_carries_the_full_name_ids_doctors_conclusion_and_qr(sent):
    world = sent.world
    letterheads.set_letterhead(world.runtime.db, world.runtime.tenancy, hospital_id="h1",
                               contact_phone="0571-87654321", logo=logo_png())
    c, _ = world.sign_in("rad1")
    r = c.get(PDF)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text[:300]
    assert r.content.startswith(b"%PDF")
    text = pdf_text(r.content)
    assert "第一医院" in text.splitlines()[0] + text.splitlines()[1]  # the letterhead
    assert "0571-87654321" in text and "医学影像检查报告" in text and "医院存档" in text
    # The hospital copy: the full name (never masked) and every number the hospital files it by.
    assert STUDY["patientName"] in text and "张*丰" not in text
    for value in (STUDY["patientId"], STUDY["accessNumber"], STUDY["inpatientNum"], STUDY["clinicNum"],
                  REPORT["reportNumber"], "放射科", "胸部"):
        assert value in text, value
    assert REPORT["imageDescription"] in text and REPORT["conclusion"] in text
    assert REPORT["reportDoctor"] in text and REPORT["auditDoctor"] in text
    assert re.search(r"2026-11-20[ \u00a0]+10:00:00", text) and re.search(r"2026-11-20[ \u00a0]+10:30:00", text)
    fonts = embedded_fonts(r.content)
    assert fonts and all("WenQuanYi" in f or "wqy" in f.lower() for f in fonts), fonts
    # The QR opens the study's cloud film: its live QR link, the same on a reprint.
    (url,) = qr_texts(r.content)
    assert url.startswith(world.runtime.settings.public_url + "/h5/s/")
    with world.runtime.db.read() as conn:
        links = conn.execute(select(s.links).where(s.links.c.hospital_id == "h1", s.links.c.study_id == "S15")).all()
        assert [lk.kind for lk in links] == ["qr"]
    again = c.get(PDF)
    assert qr_texts(again.content) == [url]
    # Printing is a patient-data access: audited (who, which study), with no name in the row.
    with world.runtime.db.read() as conn:
        rows = conn.execute(select(s.staff_audit).where(s.staff_audit.c.action == "report.print")).all()
    assert [(a.username, a.hospital_id, a.study_uid, a.subject_id) for a in rows] == [
        ("rad1", "h1", STUDY_UID, "S15")] * 2
    assert all(STUDY["patientName"] not in (a.detail or "") for a in rows)


def test_english_labels_on_request(sent):
    c, _ = sent.world.sign_in("u1admin")  # an admin of the union covers a clinician's reading
    r = c.get(PDF, params={"lang": "en"})
    assert r.status_code == 200
    text = pdf_text(r.content)
    assert "Imaging report (hospital copy)" in text and "Conclusion" in text and STUDY["patientName"] in text


def test_refusals_in_the_envelope(sent):
    world = sent.world
    outside, _ = world.sign_in("h3doc")
    body = outside.get(PDF).json()
    assert body["code"] == 30009, body
    auditor_free = world.client()
    assert auditor_free.get(PDF).json()["code"] == 20005
    c, _ = world.sign_in("rev1")
    assert c.get("/api/v1/studies/1.2.3.4.5.404/report.pdf").json()["code"] == 30008
    # A study whose report has not come yet.
    assert sent.ris.post("/ris/study/add", dict(STUDY, studyId="S16", accessNumber="ACC-1608",
                                                studyUid="1.2.826.0.1.3680043.10.15.7.2"))["code"] == 0
    assert c.get("/api/v1/studies/1.2.826.0.1.3680043.10.15.7.2/report.pdf").json()["code"] == 30003
    # Nothing refused left a trace of a print, nor a QR link made for it.
    with world.runtime.db.read() as conn:
        assert conn.execute(select(s.staff_audit).where(s.staff_audit.c.action == "report.print")).first() is None
        assert conn.execute(select(s.links).where(s.links.c.study_id == "S16")).first() is None
