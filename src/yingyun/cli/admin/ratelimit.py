"""`yingyun admin ratelimit set | list | remove`: per-partner limits on /thirdparty/*."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ..context import runtime
from ..options import AsJson
from ..output import emit, fail

app = typer.Typer(no_args_is_help=True, help="Per-partner request limits on /thirdparty/* (code 90003).")

AppId = Annotated[str, typer.Option("--app-id", help="The partner's appId.")]


@app.command("set")
def ratelimit_set(ctx: typer.Context, app_id: AppId,
                  per_minute: Annotated[int, typer.Option("--per-minute", help="Requests per minute; 0: unlimited.")],
                  ) -> None:
    """Give one partner a limit of its own (instead of serve's --rate-limit)."""
    from ...cloud.hospital_api.ratelimit import set_limit

    if per_minute < 0:
        fail("--per-minute must be >= 0")
    rt = runtime(ctx)
    if rt.tenancy.partner(app_id) is None:
        fail(f"no partner {app_id!r}")
    with rt.db.write() as conn:
        set_limit(conn, app_id=app_id, per_window=per_minute, now=time.time())
    typer.echo(f"partner {app_id}: {per_minute or 'unlimited'} requests per minute")


@app.command("list")
def ratelimit_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Partners with a limit of their own."""
    from ...cloud.hospital_api.ratelimit import list_limits

    with runtime(ctx).db.read() as conn:
        emit(list_limits(conn), as_json, ["appId", "perMinute"])


@app.command("remove")
def ratelimit_remove(ctx: typer.Context, app_id: AppId) -> None:
    """Put a partner back on the default limit."""
    from ...cloud.hospital_api.ratelimit import remove_limit

    with runtime(ctx).db.write() as conn:
        if not remove_limit(conn, app_id=app_id):
            fail(f"partner {app_id!r} has no limit of its own")
    typer.echo(f"partner {app_id}: back to the default limit")
