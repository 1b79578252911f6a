"""`yingyun admin sync [list | replay]`: the gateway's forwarding queue to the cloud."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import runtime
from ..options import AsJson, Timezone
from ..output import echo_json, emit, fail

app = typer.Typer(help="The gateway's forwarding queue to the cloud.", invoke_without_command=True)


@app.callback()
def sync_overview(ctx: typer.Context, as_json: AsJson = False, timezone: Timezone = Settings.timezone) -> None:
    """Forwarding status: what is pending, parked, the last success and error."""
    if ctx.invoked_subcommand is not None:
        return
    from ...gateway.sync import sync_status

    status = sync_status(runtime(ctx).db, zone=Zone(timezone))
    if as_json:
        echo_json(status)
    else:
        p = status["pending"]
        typer.echo(f"pending: {p['records']} records, {p['instances']} instances ({p['bytes'] / 1e6:.1f} MB); "
                   f"parked: {status['parked']}; oldest pending: {status['oldestPendingSeconds']:.0f} s; "
                   f"last success: {status['lastSuccessAt']}; last error: {status['lastError']}")


@app.command("list")
def sync_list(ctx: typer.Context, parked: Annotated[bool, typer.Option("--parked", help="Only parked items.")] = False,
              as_json: AsJson = False, timezone: Timezone = Settings.timezone) -> None:
    """Items waiting to be forwarded, or parked after too many failures."""
    from ...gateway.outbox import KIND
    from ...storage.queue import PARKED, PENDING, SqlJobQueue

    zone = Zone(timezone)
    rows = [{"id": j.pk, "eventId": j.event_id, "kind": j.payload.get("kind"), "state": j.state,
             "attempts": j.attempts, "lastError": j.last_error, "createdAt": zone.show(j.created_at)}
            for j in SqlJobQueue(runtime(ctx).db).list(kind=KIND, states=[PARKED] if parked else [PENDING, PARKED])]
    emit(rows, as_json, ["id", "kind", "state", "attempts", "lastError"])


@app.command("replay")
def sync_replay(ctx: typer.Context,
                id: Annotated[int | None, typer.Option("--id", help="One parked item (its id in `sync list`).")] = None,
                all_: Annotated[bool, typer.Option("--all", help="Every parked item.")] = False) -> None:
    """Queue parked items again."""
    from ...gateway.outbox import KIND
    from ...storage.queue import SqlJobQueue

    if (id is None) == (not all_):
        fail("give --id ID or --all")
    n = SqlJobQueue(runtime(ctx).db).replay(kind=KIND, now=time.time(), pk=id, all_parked=all_)
    typer.echo(f"{n} item(s) queued again")
