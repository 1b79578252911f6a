"""Downloads: the page, the report as PDF, the JPEG zip (rendered ahead on
request, with progress) and, for doctors, the DICOM zip."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from html import escape
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ....core.render import RenderOptions
from .. import files, study as study_svc, verify
from ..context import PatientContext
from .access import Access, H5Route, PageAccess, PatientCtx, ResourceAccess, finish
from .landing import report_pdf_bytes
from .render import audit, contact, page
from .viewer import VIEW_OPTS

log = logging.getLogger("yingyun.film")

router = APIRouter(route_class=H5Route)

RenderJob = tuple[tuple[str, str, str, int], Any, RenderOptions]


@router.get("/h5/{kind}/{token}/download")
def download_page(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    with ctx.db.read() as conn:
        stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
    audit(ctx, request, "view-download", acc.link, acc.study, acc.uids)
    return finish(ctx, page(ctx, "download.html", acc.t, link=acc.link, n_images=sum(len(s.frames) for s in stack),
                            csrf=verify.form_token(acc.csrf_key, link_pk=acc.link.pk, form="prepare")), request, acc)


@router.get("/h5/{kind}/{token}/download/report.pdf")
def download_report(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    with ctx.db.read() as conn:
        data = report_pdf_bytes(ctx, conn, acc)
    if data is None:
        return page(ctx, "message.html", acc.t, 404, title=acc.t("not_ready_title"), text=acc.t("not_ready"),
                    state="not-ready", code=None, contact=contact(ctx, acc.link.hospital_id))
    audit(ctx, request, "download-report", acc.link, acc.study, acc.uids)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="report.pdf"',
                             "Cache-Control": "private, no-store"})


@router.post("/h5/{kind}/{token}/download/prepare")
def download_prepare(request: Request, ctx: PatientCtx, acc: ResourceAccess) -> Response:
    if not verify.check_form_token(acc.csrf_key, request.headers.get("x-csrf-token"), link_pk=acc.link.pk,
                                   form="prepare"):
        return Response(status_code=403)
    _members, jobs = jpeg_members(ctx, acc)
    for key, inst, opts in jobs:
        ctx.prepare_pool.submit(_render_quiet, ctx, key, inst, opts)
    return Response(orjson.dumps({"total": len(jobs)}), media_type="application/json")


@router.get("/h5/{kind}/{token}/download/status")
def download_status(ctx: PatientCtx, acc: ResourceAccess) -> Response:
    members, _ = jpeg_members(ctx, acc)
    images = members[:-1]
    done = sum(1 for m in images if m.size >= 0)
    return Response(orjson.dumps({"done": done, "total": len(images)}), media_type="application/json")


@router.get("/h5/{kind}/{token}/download/images.zip")
def download_images(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    members, _ = jpeg_members(ctx, acc)
    audit(ctx, request, "download-images", acc.link, acc.study, acc.uids, detail=f"{len(members) - 1} images")
    headers = {"Content-Disposition": 'attachment; filename="images.zip"', "Cache-Control": "private, no-store"}
    if all(m.size >= 0 for m in members):
        headers["Content-Length"] = str(files.zip_size(members))
    else:
        for m in members:
            m.size = -1
    return StreamingResponse(_iterate(files.zip_stream(members, check=False) if "Content-Length" not in headers
                                      else files.zip_stream(members)),
                             media_type="application/zip", headers=headers)


@router.get("/h5/{kind}/{token}/download/dicom.zip")
def download_dicom(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    if not acc.link.dicom_download:
        return Response(status_code=403)
    with ctx.db.read() as conn:
        rows = study_svc.dicom_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
    series_no: dict[str, int] = {}
    counters: dict[str, int] = {}
    members = []
    for row in rows:
        sn = series_no.setdefault(row.series_uid, len(series_no) + 1)
        counters[row.series_uid] = counters.get(row.series_uid, 0) + 1
        members.append(files.ZipMember(f"DICOM/S{sn:03d}/I{counters[row.series_uid]:05d}.dcm", row.size,
                                       functools.partial(ctx.blobs.open, row.blob_key)))
    size = files.zip_size(members)
    if size > files.ZIP_LIMIT:
        return Response("study too large for one archive", status_code=413)
    audit(ctx, request, "download-dicom", acc.link, acc.study, acc.uids, detail=f"{len(members)} files")
    return StreamingResponse(_iterate(files.zip_stream(members)), media_type="application/zip",
                             headers={"Content-Disposition": 'attachment; filename="dicom.zip"',
                                      "Content-Length": str(size), "Cache-Control": "private, no-store"})


def jpeg_members(ctx: PatientContext, acc: Access) -> tuple[list[files.ZipMember], list[RenderJob]]:
    """The JPEG zip's members (images, sized when already rendered, then index.html) and the renders behind them."""
    with ctx.db.read() as conn:
        stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
        rows = {r.pk: r for r in study_svc.dicom_instances(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)}
    members: list[files.ZipMember] = []
    jobs: list[RenderJob] = []
    entries: list[tuple[study_svc.Series, str]] = []
    for s in stack:
        for n, f in enumerate(s.frames, start=1):
            inst = rows.get(f.pk)
            if inst is None:
                continue
            opts = RenderOptions(frame=f.frame, **VIEW_OPTS)
            name = f"images/series{s.index + 1:02d}/{n:04d}.jpg"
            key = ("film", acc.link.hospital_id, inst.sop_uid, f.version)
            jobs.append((key, inst, opts))
            entries.append((s, name))
            cached = ctx.cache.get(key, opts)

            def opener(key: tuple[str, str, str, int] = key, inst: Any = inst, opts: RenderOptions = opts) -> Any:
                return ctx.cache.get_or_render(key, lambda: ctx.blobs.open(inst.blob_key), opts)

            members.append(files.ZipMember(name, len(cached) if cached is not None else -1, opener))
    index = zip_index_html(acc, entries).encode("utf-8")
    members.append(files.ZipMember("index.html", len(index), lambda: index))
    return members, jobs


def _iterate(gen: Iterator[bytes]) -> Iterator[bytes]:
    # StreamingResponse runs a sync iterator in a thread pool: blob reads and
    # renders never block the event loop.
    yield from gen


def _render_quiet(ctx: PatientContext, key: tuple[str, str, str, int], inst: Any, opts: RenderOptions) -> None:
    try:
        ctx.cache.get_or_render(key, lambda: ctx.blobs.open(inst.blob_key), opts)
    except Exception as e:  # one broken image must not stop the others
        log.warning("prepare: cannot render instance pk=%d: %s", inst.pk, type(e).__name__)


def zip_index_html(acc: Access, entries: list[tuple[study_svc.Series, str]]) -> str:
    """index.html of the JPEG zip: the series one under another, readable offline."""
    t = acc.t
    parts = [f"<!doctype html><html lang=\"{t.words['html_lang']}\"><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
             f"<title>{escape(t('app'))}</title>"
             "<style>body{background:#000;color:#ddd;font:14px sans-serif;margin:0}"
             "h2{padding:8px;margin:0;background:#222}img{display:block;max-width:100%;margin:0 auto 4px}"
             "</style><body>"]
    current = None
    for s, name in entries:
        if s is not current:
            current = s
            title = f"{escape(t('series'))} {s.index + 1} {escape(s.description or '')} ({len(s.frames)})"
            parts.append(f"<h2>{title}</h2>")
        parts.append(f"<img loading=\"lazy\" src=\"{escape(name)}\" alt=\"{escape(name)}\">")
    parts.append("</body></html>")
    return "".join(parts)
