"""Remote reading (issue 15): reading routes, the worklist, study locks, the report and its two-level sign-off.

`routes` says which reading centre reads a hospital's studies, `access` who may see, lock and write them (one
rule), `worklist` what a reader has to read, `reports` the locks and every step of a report, from the first draft
to the final version written into `reports` for the rest of the platform; `api` serves them under `/api/v1`.
`ReadingContext` (filled by serve.py) carries the collaborators, among them `report_published` (the delivery to
the hospital's RIS) and `template_for` (a new report's starting text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .context import ReadingContext, TemplateFor

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(app: FastAPI, ctx: ReadingContext) -> None:
    """Serve the reading API on `app`, beside `cloud.staff.install` (whose sessions it runs under)."""
    from . import api

    app.state.reading = ctx
    app.include_router(api.router)


__all__ = ["ReadingContext", "TemplateFor", "install"]
