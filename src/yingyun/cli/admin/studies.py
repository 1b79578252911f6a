"""`yingyun admin studies | reconcile`: what arrived, and what the hospital's logs say should have."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import runtime
from ..options import AsJson, HospitalFilter, Timezone, read_time
from ..output import echo_json, emit, joined

Since = Annotated[str | None, typer.Option("--since", help="Only logs received since TIME (as printed, or "
                                                                "yyyy-MM-dd[ HH:mm:ss] in --timezone).")]


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


def reconcile(ctx: typer.Context, as_json: AsJson = False, since: Since = None, hospital: HospitalFilter = None,
              timezone: Timezone = Settings.timezone) -> None:
    """Open discrepancies between the hospital's reconciliation logs and what arrived."""
    from ...archive.reconcile import discrepancies

    zone = Zone(timezone)
    since_ts = read_time(zone, since)
    with runtime(ctx).db.read() as conn:
        rows = discrepancies(conn, since=since_ts, hospital_id=hospital, zone=zone)
    if as_json:
        echo_json(rows)
        return
    flat = [dict(r, expected=joined(r["expected"]), received=joined(r["received"])) for r in rows]
    emit(flat, False, ["kind", "hospitalId", "studyId", "accessNumber", "expected", "received", "loggedAt"])
