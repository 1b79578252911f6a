"""`yingyun admin callbacks [replay]`: status callbacks to partners."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.times import Zone
from ...runtime import Runtime
from ...settings import Settings
from ..context import replay_parked, runtime
from ..options import AsJson, Timezone
from ..output import Row, emit

app = typer.Typer(help="Status callbacks to partners: what was delivered, what is failing, replay parked ones.")


def delivery_rows(rt: Runtime, *, failed: bool, zone: Zone) -> list[Row]:
    from ...cloud.callbacks.events import KIND
    from ...storage.queue import PENDING, SqlJobQueue

    out = []
    for j in SqlJobQueue(rt.db).list(kind=KIND, failed=failed):
        p = j.payload
        out.append({
            "id": j.pk, "eventId": j.event_id, "appId": p.get("appId"), "hospitalId": p.get("hospitalId"),
            "studyId": p.get("studyId"), "status": p.get("status"), "state": j.state, "attempts": j.attempts,
            "lastError": j.last_error, "nextAttemptAt": zone.show(j.next_attempt_at) if j.state == PENDING else None,
            "createdAt": zone.show(j.created_at),
        })
    return out


@app.callback(invoke_without_command=True)
def callbacks_list(ctx: typer.Context, as_json: AsJson = False,
                   failed: Annotated[bool, typer.Option("--failed", help="Only parked ones and pending ones whose "
                                                                         "last attempt failed.")] = False,
                   timezone: Timezone = Settings.timezone) -> None:
    """One object per delivery: id, eventId, appId, studyId, status, state, attempts, lastError, nextAttemptAt."""
    if ctx.invoked_subcommand is not None:
        return
    rows = delivery_rows(runtime(ctx), failed=failed, zone=Zone(timezone))
    emit(rows, as_json, ["id", "appId", "studyId", "status", "state", "attempts", "nextAttemptAt", "lastError"])


@app.command("replay")
def callbacks_replay(ctx: typer.Context,
                     id: Annotated[int | None, typer.Option("--id", help="One parked delivery.")] = None,
                     all_parked: Annotated[bool, typer.Option("--all-parked", help="Every parked delivery.")] = False,
                     ) -> None:
    """Send parked deliveries again (same eventId; a new retry cycle)."""
    from ...cloud.callbacks.events import KIND

    replay_parked(ctx, kind=KIND, noun="callback delivery", pk=id, all_parked=all_parked)
