"""`yingyun admin studies`: what arrived."""

from __future__ import annotations

import typer

from ..context import runtime
from ..options import AsJson, HospitalFilter
from ..output import echo_json, emit, joined


def studies(ctx: typer.Context, as_json: AsJson = False, hospital: HospitalFilter = None) -> None:
    """Every study, RIS-known or DICOM-only, with what actually arrived."""
    from ...archive.listing import list_studies

    with runtime(ctx).db.read() as conn:
        rows = list_studies(conn, hospital_id=hospital)
    if as_json:
        echo_json(rows)
        return
    flat = [dict(r, received=joined(r["received"]), warnings=len(r["warnings"])) for r in rows]
    emit(flat, False, ["hospitalId", "studyId", "accessNumber", "status", "deleted", "warnings", "received"])
