"""`yingyun admin hold add | list | remove`: legal holds, which nothing purges."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import retention_events, runtime
from ..options import AsJson, Timezone
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Legal holds: a held study is never purged (deleted or due).")

StudyUid = Annotated[str, typer.Option("--study-uid", help="The Study Instance UID to hold.")]


@app.command("add")
def hold_add(ctx: typer.Context, study_uid: StudyUid,
             reason: Annotated[str, typer.Option("--reason", help="Why (a case number, say): kept with the hold.")],
             ) -> None:
    """Hold a study: no purge removes it, in any hospital that has it, until the hold is removed. On a gateway
    the hold reaches the cloud too."""
    from ...archive.retention import add_hold

    rt = runtime(ctx)
    added = add_hold(rt.db, study_uid=study_uid, reason=reason, events=retention_events(rt))
    typer.echo(f"study {study_uid}: " + ("held" if added else "was held already (its first reason is kept)"))


@app.command("list")
def hold_list(ctx: typer.Context, as_json: AsJson = False, timezone: Timezone = Settings.timezone) -> None:
    """The studies held, with their reasons."""
    from ...archive.retention import holds

    zone = Zone(timezone)
    with runtime(ctx).db.read() as conn:
        rows = [dict(r, since=zone.show(r["since"])) for r in holds(conn)]
    emit(rows, as_json, ["studyUid", "reason", "since", "origin"])


@app.command("remove")
def hold_remove(ctx: typer.Context, study_uid: StudyUid) -> None:
    """Lift a hold (the study is purged again when deleted or due)."""
    from ...archive.retention import remove_hold

    rt = runtime(ctx)
    remove_hold(rt.db, study_uid=study_uid, events=retention_events(rt))
    typer.echo(f"study {study_uid}: hold lifted")
