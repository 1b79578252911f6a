"""Report templates and the knowledge base of report phrases (issue 15 item 5).

`catalogue`: body parts and exam items of a reading centre or of a union, and `template_for`, the text a
new report of a study starts from (the reading core calls it); `kb`: folders of report phrases, personal
or shared by a centre; `access`: who may read and write them; `api`: the `/api/v1` routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .catalogue import template_for
from .context import TemplatesContext

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(app: FastAPI, ctx: TemplatesContext) -> None:
    """Serve the templates and knowledge-base API on `app`, beside `cloud.staff.install` (its sessions)."""
    from . import api

    app.state.templates = ctx
    app.include_router(api.router)


__all__ = ["TemplatesContext", "install", "template_for"]
