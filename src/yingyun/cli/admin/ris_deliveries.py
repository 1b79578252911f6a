"""`yingyun admin ris-deliveries [replay]`: final reports on their way to the hospital's RIS (HTTP and HL7)."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import replay_parked, runtime
from ..options import AsJson, Timezone
from ..output import emit, fail

app = typer.Typer(help="Final reports to the hospital's RIS (--ris-report-url, --hl7-report-to): pending, parked, "
                       "delivered; replay parked ones.")

STATES = ("pending", "parked", "delivered")


@app.callback(invoke_without_command=True)
def deliveries_list(ctx: typer.Context, as_json: AsJson = False,
                    state: Annotated[str | None, typer.Option("--state", help="Only pending, parked or delivered "
                                                                              "ones.")] = None,
                    timezone: Timezone = Settings.timezone) -> None:
    """One object per delivery: id, eventId, channel (ris | hl7), hospitalId, studyUid, state, attempts,
    lastError, nextAttemptAt, createdAt, finishedAt. No patient identifier."""
    if ctx.invoked_subcommand is not None:
        return
    from ...gateway.delivery import delivery_rows

    if state is not None and state not in STATES:
        fail("--state is pending, parked or delivered")
    zone = Zone(timezone)
    rows = delivery_rows(runtime(ctx).db, show=zone.show, states=[state] if state else None)
    emit(rows, as_json, ["id", "channel", "hospitalId", "studyUid", "state", "attempts", "nextAttemptAt",
                         "lastError"])


@app.command("replay")
def deliveries_replay(ctx: typer.Context,
                      id: Annotated[int | None, typer.Option("--id", help="One parked delivery.")] = None,
                      all_parked: Annotated[bool, typer.Option("--all-parked", help="Every parked delivery.")] = False,
                      ) -> None:
    """Send parked deliveries again (the same eventId or HL7 control id; a new 24-hour retry cycle)."""
    from ...archive.downlink import KIND_OUT

    replay_parked(ctx, kind=KIND_OUT, noun="RIS delivery", pk=id, all_parked=all_parked)
