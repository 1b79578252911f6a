"""The static files, and a link's landing page: the report, and the hospital's PDF."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from .. import study as study_svc
from ..context import PatientContext
from .access import Access, H5Route, PageAccess, PatientCtx, finish, gate
from .render import audit, page, static_files

log = logging.getLogger("yingyun.film")

router = APIRouter(route_class=H5Route)


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
                            pdf=bool(pdfs), n_images=n_images), request, acc)


def pdf_access(request: Request, ctx: PatientCtx, kind: str, token: str, download: int = 0) -> Access:
    # `download` is declared here so a malformed one is a 422 before the gate runs
    # (a route's own parameters are validated only after its dependencies).
    return gate(ctx, request, kind, token, page=False)


@router.get("/h5/{kind}/{token}/report.pdf")
def hospital_pdf(request: Request, ctx: PatientCtx, acc: Annotated[Access, Depends(pdf_access)],
                 download: int = 0) -> Response:
    with ctx.db.read() as conn:
        pdfs = study_svc.pdf_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
    data = extract_pdf(ctx, pdfs[0]) if pdfs else None
    if data is None:
        return Response(status_code=404)
    audit(ctx, request, "download-report" if download else "view-pdf", acc.link, acc.study, acc.uids)
    disp = "attachment" if download else "inline"
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'{disp}; filename="report.pdf"',
                             "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
                             "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "private, no-store"})


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


def report_info(ctx: PatientContext, acc: Access) -> dict[str, str]:
    """The report's header facts in the visitor's words (the name masked)."""
    study = acc.study
    t = acc.t
    det = study_svc.details(study)
    hospital = ctx.tenancy.hospitals().get(study.hospital_id, {}).get("name") or study.hospital_id
    sex = t(f"sex_{study.patient_sex}") if study.patient_sex in ("M", "F", "O") else ""
    age = ""
    if det.get("patientAge") not in (None, ""):
        unit = det.get("patientAgeUnit") if det.get("patientAgeUnit") in ("Y", "M", "D") else "Y"
        age = t(f"age_{unit}", n=det.get("patientAge"))
    return {
        "hospital": hospital,
        "name": study_svc.mask_name(study.patient_name),
        "sex": sex,
        "age": age,
        "exam_item": study.study_desc or "",
        "body_part": study.body_part or "",
        "modality": study.modality or "",
        "exam_time": study.study_date or "",
    }
