"""The reading viewer: OHIF's published build (`@ohif/app`) served at /reading/viewer/, talking to our /dicomweb.

`/reading/viewer/viewer?StudyInstanceUIDs=<uid>` opens a study; the browser
sends the staff session cookie with every DICOMweb request (same origin), and
/dicomweb decides what that user may see (its `StudyGate`). The build comes
from node_modules/@ohif/app/dist (pinned under "prebuilt" in package.json,
installed by `make assets`), never from a CDN; assets.py adapts it to this
base path and pages.py serves it with its configuration and CSP.
"""

from __future__ import annotations

from fastapi import FastAPI

from .assets import OhifBuild, find_build
from .pages import CSP, PREFIX, SECURITY_HEADERS, router

__all__ = ["CSP", "PREFIX", "SECURITY_HEADERS", "OhifBuild", "find_build", "install"]


def install(app: FastAPI, build: OhifBuild | None) -> None:
    """Serve the viewer on `app` from `build` (None: not installed, every page says how to install it)."""
    app.state.viewer = build
    app.include_router(router)
