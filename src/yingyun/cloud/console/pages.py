"""The console's page, its script and style, and the npm assets it loads (all served here, none from a CDN).

One HTML page at /console/ in the browser's language; console.js draws every
view from the `/api/v1` calls, so the page itself carries nothing a signed-out
visitor may not see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ..patient.i18n import pick_language
from ..patient.pages import SECURITY_HEADERS as PATIENT_HEADERS
from .assets import ECHARTS, node_modules
from .i18n import HTML_LANG, LANGS

PREFIX = "/console"
HERE = Path(__file__).parent
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}
# ECharts' tooltips and canvas sizing set inline styles; scripts stay 'self' only.
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# The patient pages' headers, with the console's CSP.
SECURITY_HEADERS = {**PATIENT_HEADERS, "Content-Security-Policy": CSP}
_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
def bare() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get("/")
def page(request: Request, accept_language: Annotated[str | None, Header()] = None) -> HTMLResponse:
    lang = pick_language(accept_language)
    words = LANGS[lang]
    html = _templates.get_template("console.html").render(
        lang=HTML_LANG[lang], words=words, words_json=json.dumps(words, ensure_ascii=False).replace("<", "\\u003c"),
        echarts=node_modules() is not None, timezone=request.app.state.console_timezone)
    return HTMLResponse(html, headers={**SECURITY_HEADERS, "Cache-Control": "no-store", "Vary": "Accept-Language"})


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        return Response(status_code=404)
    return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/assets/echarts.min.js")
def echarts() -> Response:
    folder = node_modules()
    if folder is None:
        return Response("ECharts is not installed: run `make assets`", status_code=404, media_type="text/plain")
    return FileResponse(folder / ECHARTS, media_type="text/javascript",
                        headers={**SECURITY_HEADERS, "Cache-Control": "max-age=86400"})
