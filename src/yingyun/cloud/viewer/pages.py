"""/reading/viewer/: OHIF's index, its generated app-config.js, the build's files, and the SPA fallback.

The CSP is what OHIF runs under and no wider: its code and workers from us
(`worker-src blob:` for the workers cornerstone builds from blobs), its
decoders' WebAssembly (`'wasm-unsafe-eval'`, not `'unsafe-eval'`), the one
inline script by hash, inline styles (React sets them), images from data:
and blob: URLs, and fetches to this origin only: /dicomweb is same-origin,
so the staff session cookie goes with every request and nothing leaves.
`frame-ancestors 'self'`: the reading page may hold it in a frame.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from .assets import OhifBuild

PREFIX = "/reading/viewer"
DICOMWEB = "/dicomweb"
YEAR = "public, max-age=31536000, immutable"


def csp(script_hash: str) -> str:
    return ("default-src 'self'; "
            f"script-src 'self' 'wasm-unsafe-eval' '{script_hash}'; worker-src 'self' blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'self'; "
            "form-action 'none'; frame-ancestors 'self'")


CSP = csp("sha256-…")  # its shape, for documentation; the header carries the build's own hash
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
MEDIA = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".wasm": "application/wasm",
         ".json": "application/json", ".woff2": "font/woff2", ".svg": "image/svg+xml", ".html": "text/html"}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def app_config(prefix: str = PREFIX, dicomweb: str = DICOMWEB) -> str:
    """OHIF's window.config: one DICOMweb data source, our own /dicomweb on this origin, WADO-RS images."""
    root = f"window.location.origin + {json.dumps(dicomweb)}"
    return f"""window.config = {{
  routerBasename: {json.dumps(prefix)},
  extensions: [],
  modes: [],
  // no onboarding tour over the first image: the reading page is where a radiologist learns the viewer
  customizationService: {{ 'ohif.tours': {{ $set: [] }} }},
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  investigationalUseDialog: {{ option: 'never' }},
  defaultDataSourceName: 'yingyun',
  dataSources: [{{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'yingyun',
    configuration: {{
      friendlyName: 'Yingyun',
      name: 'yingyun',
      wadoUriRoot: {root}, qidoRoot: {root}, wadoRoot: {root},
      qidoSupportsIncludeField: true,
      supportsReject: false,
      imageRendering: 'wadors',
      // the series thumbnail as our server renders it (kept in its render cache), not a full frame decoded here
      thumbnailRendering: 'thumbnail',
      thumbnailRequestStrategy: 'fetch',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video',
      bulkDataURI: {{ enabled: true }},
      omitQuotationForMultipartRequest: true,
    }},
  }}],
}};
"""


async def _build(request: Request) -> OhifBuild | None:
    build: OhifBuild | None = request.app.state.viewer
    return build


BuildDep = Annotated[OhifBuild | None, Depends(_build)]


def _missing() -> Response:
    return Response("The viewer (OHIF) is not installed here: run `make assets`.\n", status_code=503,
                    media_type="text/plain", headers={"Cache-Control": "no-store", **SECURITY_HEADERS})


def _index(build: OhifBuild) -> Response:
    return Response(build.index_html, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp(build.script_hash),
                             **SECURITY_HEADERS})


@router.get("")
async def bare() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get("/app-config.js")
async def config_js(build: BuildDep) -> Response:
    if build is None:
        return _missing()
    return Response(app_config(build.prefix), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})


@router.get("/{path:path}")
def asset(path: str, build: BuildDep) -> Response:
    """A file of the build; any other path without a file extension is one of OHIF's own routes (its index)."""
    if build is None:
        return _missing()
    f = build.file(path) if path not in ("", "index.html", "app-config.js") else None
    if f is None:
        if "." in path.rsplit("/", 1)[-1]:
            return Response(status_code=404, headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})
        return _index(build)
    suffix = f.suffix.lower()
    media = MEDIA.get(suffix)
    headers = {"Cache-Control": YEAR if build.immutable(path) else "no-cache", **SECURITY_HEADERS}
    body = build.rewritten(path, f)
    if body is not None:
        return Response(body, media_type=media, headers=headers)
    return FileResponse(f, media_type=media, headers=headers)
