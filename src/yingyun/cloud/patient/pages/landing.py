"""The static files, and a link's landing page: the report, and the hospital's PDF."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from .... import letterheads
from ....core import bodyparts, reportpdf
from .. import study as study_svc
from ..context import PatientContext
from .access import Access, H5Route, PageAccess, PatientCtx, finish, gate
from .render import audit, page, static_files

log = logging.getLogger("yingyun.film")

router = APIRouter(route_class=H5Route)
# Links whose visitor is the patient: their printed copy carries the full name.
OWN_COPY = ("qr", "partner")


@router.get("/h5/static/{name}")
def static_file(name: str) -> Response:
    item = static_files().get(name)
    if item is None:
        return Response(status_code=404)
    data, media, _ = item
    return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=31536000, immutable"})


@router.get("/h5/{kind}/{token}")
def landing(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    with ctx.db.read() as conn:
        rep = study_svc.latest_report(conn, acc.study)
        pdfs = study_svc.pdf_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
        stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
    audit(ctx, request, "view-report", acc.link, acc.study, acc.uids)
    n_images = sum(len(s.frames) for s in stack)
    return finish(ctx, page(ctx, "report.html", acc.t, link=acc.link, info=report_info(ctx, acc), report=rep,
                            pdf=bool(pdfs) or rep is not None, n_images=n_images), request, acc)


def pdf_access(request: Request, ctx: PatientCtx, kind: str, token: str, download: int = 0) -> Access:
    # `download` is declared here so a malformed one is a 422 before the gate runs
    # (a route's own parameters are validated only after its dependencies).
    return gate(ctx, request, kind, token, page=False)


@router.get("/h5/{kind}/{token}/report.pdf")
def report_pdf(request: Request, ctx: PatientCtx, acc: Annotated[Access, Depends(pdf_access)],
               download: int = 0) -> Response:
    """The hospital's own PDF when it sent one, else the report printed on its letterhead."""
    with ctx.db.read() as conn:
        data = report_pdf_bytes(ctx, conn, acc)
    if data is None:
        return Response(status_code=404)
    audit(ctx, request, "download-report" if download else "view-pdf", acc.link, acc.study, acc.uids)
    disp = "attachment" if download else "inline"
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'{disp}; filename="report.pdf"',
                             "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
                             "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "private, no-store"})


def report_pdf_bytes(ctx: PatientContext, conn: Connection, acc: Access) -> bytes | None:
    """The PDF of the study's report: the hospital's own, else ours; None while there is no report at all."""
    pdfs = study_svc.pdf_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
    data = extract_pdf(ctx, pdfs[0]) if pdfs else None
    if data is not None:
        return data
    rep = study_svc.latest_report(conn, acc.study)
    if rep is None:
        return None
    head = letterheads.letterhead(conn, hospital_id=acc.study.hospital_id, name=hospital_name(ctx, acc.study))
    return reportpdf.render(report_document(ctx, acc, rep, head))


def report_document(ctx: PatientContext, acc: Access, rep: Any, head: reportpdf.Letterhead) -> reportpdf.ReportDocument:
    """The printed report in the visitor's words; the full name on the patient's own copy only."""
    t = acc.t
    info = report_info(ctx, acc, full_name=acc.link.kind in OWN_COPY)
    det = study_svc.details(acc.study)
    return reportpdf.ReportDocument(
        title=t("report_title"), letterhead=head,
        patient=[(t("patient"), info["name"]), (t("sex"), info["sex"]), (t("age"), info["age"]),
                 (t("patient_id"), acc.study.patient_id or ""), (t("access_number"), acc.study.access_number or ""),
                 (t("inpatient_num"), str(det.get("inpatientNum") or "")),
                 (t("clinic_num"), str(det.get("clinicNum") or ""))],
        exam=[(t("modality"), info["modality"]), (t("body_part"), info["body_part"]),
              (t("exam_dept"), str(det.get("examDept") or "")), (t("exam_time"), info["exam_time"]),
              (t("exam_item"), info["exam_item"])],
        sections=[(t("findings"), rep.image_description or ""), (t("conclusion"), rep.conclusion or "")],
        signatures=[(t("report_doctor"), rep.report_doctor or ""), (t("report_time"), rep.report_time or ""),
                    (t("audit_doctor"), rep.audit_doctor or ""), (t("audit_time"), rep.audit_time or "")],
        qr_url=ctx.settings.public_url.rstrip("/") + acc.link.base_path, qr_caption=t("qr_caption"),
        contact_label=t("contact_phone"), footer=t("pdf_footer"))


def extract_pdf(ctx: PatientContext, inst: Any) -> bytes | None:
    """The hospital's PDF report carried in an Encapsulated PDF instance, or None when it cannot be read."""
    from pydicom import dcmread

    try:
        with ctx.blobs.open(inst.blob_key) as f:
            ds = dcmread(f)
        data = bytes(ds.EncapsulatedDocument)
    except Exception as e:
        log.warning("cannot read encapsulated PDF pk=%d: %s", inst.pk, type(e).__name__)
        return None
    # An odd-length document carries one pad byte after %%EOF; harmless.
    return data if data.startswith(b"%PDF") else None


def hospital_name(ctx: PatientContext, study: Any) -> str:
    name: str = ctx.tenancy.hospitals().get(study.hospital_id, {}).get("name") or study.hospital_id
    return name


def report_info(ctx: PatientContext, acc: Access, *, full_name: bool = False) -> dict[str, str]:
    """The report's header facts in the visitor's words (the name masked unless `full_name`).

    In Chinese, body parts, modalities and exam names a hospital sent as
    codes or English are shown in Chinese (core/bodyparts.py)."""
    study = acc.study
    t = acc.t
    det = study_svc.details(study)
    sex = t(f"sex_{study.patient_sex}") if study.patient_sex in ("M", "F", "O") else ""
    age = ""
    if det.get("patientAge") not in (None, ""):
        unit = det.get("patientAgeUnit") if det.get("patientAgeUnit") in ("Y", "M", "D") else "Y"
        age = t(f"age_{unit}", n=det.get("patientAge"))
    modality, body_part, exam_item = study.modality or "", study.body_part or "", study.study_desc or ""
    if t.lang == "zh":
        exam_item = bodyparts.exam_name_zh(exam_item, modality=modality, body_part=body_part)
        body_part = bodyparts.body_part_zh(body_part)
        modality = bodyparts.modality_zh(modality)
    return {
        "hospital": hospital_name(ctx, study),
        "name": study_svc.display_name(study.patient_name) if full_name else study_svc.mask_name(study.patient_name),
        "sex": sex,
        "age": age,
        "exam_item": exam_item,
        "body_part": body_part,
        "modality": modality,
        "exam_time": study.study_date or "",
    }
