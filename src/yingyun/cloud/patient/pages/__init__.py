"""The cloud-film pages: /h5/{s|p|d|share}/{token}[/...], and /h5/consultations/{token}.

Server-rendered (Jinja2, words from i18n.py), readable without JavaScript
except the image viewer; every /h5 response carries a strict CSP (no inline
script or style), no-referrer and nosniff (SECURITY_HEADERS, installed by
serve for the whole prefix), and pages are `no-store`. A QR link shows
nothing of the study until the visitor is verified (access.py); a verified
visitor gets an HttpOnly, SameSite=Strict session cookie whose path is the
link's own base path, so it is sent for that link's pages only. Every page
view, image and download is audited (audit.py).

One module per family of pages: landing (the report and the hospital's PDF,
and the static files), verify, viewer, downloads, shares, consultations, and
me (the patient's own archive, /h5/me).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from ..context import PatientContext
from . import consultations, downloads, landing, me, shares, verify, viewer

PREFIX = "/h5"
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'self'; "
       "frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# On every /h5 response, whatever route (or none) answered it: serve installs
# web.common.SecurityHeaders with this table. Cache-Control is the routes' own.
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

router = APIRouter(include_in_schema=False)
# /h5/consultations/{token}, /h5/me/... and /h5/static/{name} (in landing) must match before /h5/{kind}/{token}.
for family in (consultations, me, landing, verify, viewer, downloads, shares):
    router.include_router(family.router)


def install(app: FastAPI, ctx: PatientContext) -> None:
    """Serve the pages on `app`, over `ctx` (read by the handlers' `PatientCtx` dependency)."""
    app.state.film = ctx
    app.include_router(router)
