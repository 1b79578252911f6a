"""`GET /api/v1/studies/{studyUid}/report.pdf`: the hospital's copy of the study's report (printing.py).

On the staff edge: the session cookie (20005 / 20007 without one), then the
study (30008 unknown, 30009 not the caller's to read, 30003 no report yet),
each refusal in the envelope like every other `/api/v1` answer; the PDF
itself as `application/pdf`. `?lang=en` (or an Accept-Language preferring
English) prints the labels in English.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..patient.i18n import pick_language
from ..staff.edge import CallerDep, StaffRoute
from .context import ReadingPageContext
from .printing import hospital_copy

router = APIRouter(prefix="/api/v1", tags=["Remote reading"], route_class=StaffRoute)


async def _context(request: Request) -> ReadingPageContext:
    ctx: ReadingPageContext = request.app.state.readingpage
    return ctx


PageCtx = Annotated[ReadingPageContext, Depends(_context)]


@router.get("/studies/{studyUid}/report.pdf",
            summary="The hospital's copy of the study's report as PDF (refusals in the envelope: 30003, 30008, "
                    "30009)")
async def report_pdf(studyUid: str, caller: CallerDep, ctx: PageCtx, lang: str | None = None,  # noqa: N803  (the path's name)
                     accept_language: Annotated[str | None, Header()] = None) -> Response:
    chosen = lang if lang in ("zh", "en") else pick_language(accept_language)

    def answer() -> bytes:
        with ctx.db.write() as conn:  # the QR link may be made now, and the print is audited
            return hospital_copy(conn, ctx, caller, study_uid=studyUid, lang=chosen).pdf

    data = await run_in_threadpool(answer)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="report.pdf"',
                             "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
                             "X-Frame-Options": "SAMEORIGIN"})
