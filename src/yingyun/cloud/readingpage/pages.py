"""The reading page at /reading/, its script and style (all served here, none from a CDN).

One HTML page in the browser's language, built like the console's (its
sign-in form and look, its language choice and security headers);
reading.js draws the worklist and the editor from `/api/v1` calls, so the
page carries nothing a signed-out visitor may not see. OHIF is framed from
`/reading/viewer/` (same origin: `frame-src 'self'`); the viewer's own
pages must allow being framed by this one (`frame-ancestors 'self'`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ..console.pages import SECURITY_HEADERS as CONSOLE_HEADERS
from ..patient.i18n import pick_language
from .i18n import HTML_LANG, LANGS

PREFIX = "/reading"
VIEWER = f"{PREFIX}/viewer/viewer"  # + ?StudyInstanceUIDs=<uid>, OHIF's route (the viewer's package)
HERE = Path(__file__).parent
STATIC = {"reading.js": "text/javascript", "reading.css": "text/css"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {**CONSOLE_HEADERS, "Content-Security-Policy": CSP}
_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
def bare() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get("/")
def page(accept_language: Annotated[str | None, Header()] = None) -> HTMLResponse:
    lang = pick_language(accept_language)
    words = LANGS[lang]
    html = _templates.get_template("reading.html").render(
        lang=HTML_LANG[lang], words=words, viewer=VIEWER,
        words_json=json.dumps(words, ensure_ascii=False).replace("<", "\\u003c"))
    return HTMLResponse(html, headers={**SECURITY_HEADERS, "Cache-Control": "no-store", "Vary": "Accept-Language"})


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        return Response(status_code=404)
    return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
