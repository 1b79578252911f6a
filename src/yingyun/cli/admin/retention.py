"""`yingyun admin retention set | list | due [--apply] | purged`: how long each hospital keeps studies."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import retention_events, runtime, use_servers_blobs
from ..options import AsJson, HospitalFilter, Timezone
from ..output import echo_json, emit, fail

app = typer.Typer(no_args_is_help=True, help="Retention rules per hospital and patient class; purge what is due.")


@app.command("set")
def retention_set(
    ctx: typer.Context,
    hospital: Annotated[str, typer.Option("--hospital", help="The hospital the rule is for.")],
    outpatient_years: Annotated[int, typer.Option("--outpatient-years", help="Years an outpatient's study (a "
                                                                              "clinicNum) is kept.")],
    inpatient_years: Annotated[int, typer.Option("--inpatient-years", help="Years an inpatient's study (an "
                                                                            "inpatientNum) is kept.")],
    other_years: Annotated[int | None, typer.Option("--other-years", help="Years any other study is kept "
                                                                           "(default: kept for good).")] = None,
) -> None:
    """Set the hospital's rule (replacing its previous one). Nothing is purged until `due --apply`."""
    from ...archive.retention import set_rule

    rt = runtime(ctx)
    if hospital not in rt.tenancy.hospitals():
        fail(f"no hospital {hospital!r}")
    set_rule(rt.db, hospital_id=hospital, outpatient_years=outpatient_years, inpatient_years=inpatient_years,
             other_years=other_years)
    typer.echo(f"hospital {hospital}: outpatients {outpatient_years} years, inpatients {inpatient_years} years, "
               f"others {f'{other_years} years' if other_years else 'kept'}")


@app.command("list")
def retention_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The hospitals' rules."""
    from ...archive.retention import rules

    with runtime(ctx).db.read() as conn:
        emit(rules(conn), as_json, ["hospitalId", "outpatientYears", "inpatientYears", "otherYears"])


@app.command("due")
def retention_due(
    ctx: typer.Context,
    hospital: HospitalFilter = None,
    apply: Annotated[bool, typer.Option("--apply", help="Purge what is due (held studies are never purged).")] = False,
    as_json: AsJson = False,
    timezone: Timezone = Settings.timezone,
) -> None:
    """List the studies the rules have run out for (a dry run); with --apply, purge them."""
    from ...archive.retention import Purger, due

    rt = runtime(ctx)
    with rt.db.read() as conn:
        items = due(conn, now=time.time(), hospital_id=hospital)
    zone = Zone(timezone)
    rows = [dict(d.as_json(), dueAt=zone.show(d.due_at)) for d in items]
    if apply:
        use_servers_blobs(rt, None)
        from ...gateway.outbox import unforwarded

        # A gateway's study the cloud has yet to get waits (the check finds nothing queued on a cloud); what a
        # gateway purges is queued for the cloud to purge too.
        purged = Purger(rt.db, rt.blobs, clear_render_cache=lambda: rt.render_cache.clear(),
                        unforwarded=unforwarded, events=retention_events(rt)).purge_due(items)
        done = {(p.hospital_id, p.study_id, p.study_uid) for p in purged}
        for row in rows:
            row["purged"] = (row["hospitalId"], row["studyId"], row["studyUid"]) in done
    if as_json:
        echo_json(rows)
    else:
        emit(rows, False, ["hospitalId", "studyId", "studyUid", "patientClass", "years", "dueAt", "held",
                           *(["purged"] if apply else [])])
        if not apply and any(not r["held"] for r in rows):
            typer.echo("(a dry run: nothing purged; --apply purges these but the held ones)", err=True)


@app.command("purged")
def retention_purged(ctx: typer.Context, hospital: HospitalFilter = None, as_json: AsJson = False,
                     timezone: Timezone = Settings.timezone) -> None:
    """The tombstones of purged studies: which, when deleted, when purged, by what rule."""
    from ...archive.retention import tombstones

    zone = Zone(timezone)
    with runtime(ctx).db.read() as conn:
        rows = tombstones(conn, hospital_id=hospital)
    for row in rows:
        row["purgedAt"] = zone.show(row["purgedAt"])
        row["deletedAt"] = zone.show_optional(row["deletedAt"])
    emit(rows, as_json, ["hospitalId", "studyId", "studyUid", "reason", "rule", "deletedAt", "purgedAt", "instances"])
