"""`yingyun admin reconcile [heal --study-id ID]`: the open discrepancies, and healing one of them now."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import runtime, use_servers_blobs
from ..options import AsJson, HospitalFilter, Timezone, read_time
from ..output import echo_json, emit, fail, joined

Since = Annotated[str | None, typer.Option("--since", help="Only logs received since TIME (as printed, or "
                                                                "yyyy-MM-dd[ HH:mm:ss] in --timezone).")]


def show_discrepancies(ctx: typer.Context, *, as_json: bool, since: str | None, hospital: str | None,
                       timezone: str) -> None:
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


app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                  help="Open discrepancies between the hospital's reconciliation logs and what arrived; `heal` "
                       "retrieves what a study lacks from the hospital's PACS now.")


@app.callback()
def reconcile(ctx: typer.Context, as_json: AsJson = False, since: Since = None, hospital: HospitalFilter = None,
              timezone: Timezone = Settings.timezone) -> None:
    """Open discrepancies between the hospital's reconciliation logs and what arrived (with what healing found)."""
    if ctx.invoked_subcommand is None:
        show_discrepancies(ctx, as_json=as_json, since=since, hospital=hospital, timezone=timezone)


@app.command("heal")
def heal(ctx: typer.Context,
         study_id: Annotated[str, typer.Option("--study-id", help="The study, by the hospital's study id.")],
         hospital: Annotated[str | None, typer.Option(
             "--hospital", help="Its hospital (needed when several hospitals list that study id).")] = None,
         ae_title: Annotated[str, typer.Option(
             "--ae-title", help="The gateway's own AE title (as given to serve): the C-MOVE destination.")
         ] = Settings.ae_title,
         ) -> None:
    """Ask the study's PACS which instances it holds and retrieve the absent ones now (C-MOVE to the running
    gateway, or C-GET for a PACS registered with --retrieve get); print what was asked, retrieved and missing."""
    from sqlalchemy import select

    from ...gateway.heal import Healer
    from ...storage import schema as s

    rt = runtime(ctx)
    if hospital is None:
        with rt.db.read() as conn:
            hospitals = sorted(set(conn.execute(select(s.reconcile_entries.c.hospital_id).where(
                s.reconcile_entries.c.study_id == study_id)).scalars()))
        if len(hospitals) != 1:
            fail("no reconciliation log lists this study id" if not hospitals else
                 "several hospitals list this study id: give --hospital")
        hospital = hospitals[0]
    use_servers_blobs(rt, None)  # a C-GET writes where the server reads
    healer = Healer(db=rt.db, tenancy=rt.tenancy, store=rt.instances, ae_title=ae_title)
    echo_json(healer.heal(hospital_id=hospital, study_id=study_id))
