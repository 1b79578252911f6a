"""The reading page at /reading/ and the hospital copy of a report as PDF (issue 15 items 6 and 7).

`pages.py` serves the one page, its script and style (all from Yingyun, no
CDN) in the browser's language (`i18n.py`); reading.js draws the worklist
and the report editor from the reading API (`/api/v1/worklist`, `…/lock`,
`…/report`, exam items, the knowledge base) and opens the images in OHIF
(`/reading/viewer/`, served by the viewer's package). `printing.py` lays out
the hospital's copy of a final report (`GET /api/v1/studies/{uid}/report.pdf`,
`router.py`) with `core/reportpdf`.
"""

from __future__ import annotations

from fastapi import FastAPI

from .context import ReadingPageContext, ScopeGate, StudyGate
from .pages import PREFIX

__all__ = ["PREFIX", "ReadingPageContext", "ScopeGate", "StudyGate", "install"]


def install(app: FastAPI, ctx: ReadingPageContext) -> None:
    """Serve the page and the report PDF on `app`, over `ctx` (read by the handlers' dependency)."""
    from . import pages, router

    app.state.readingpage = ctx
    app.include_router(router.router)
    app.include_router(pages.router)
