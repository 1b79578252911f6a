"""`yingyun admin token add | list | revoke`: bearer tokens for DICOMweb tools."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.times import Zone
from ...settings import Settings
from ..context import runtime
from ..options import AsJson, Timezone
from ..output import echo_json, emit, shown

app = typer.Typer(no_args_is_help=True, help="Bearer tokens for DICOMweb tools (viewers, AI pipelines).")

TokenName = Annotated[str, typer.Option("--name", help="The token's name (who or what uses it).")]


@app.command("add")
def token_add(
    ctx: typer.Context,
    name: TokenName,
    hospital: Annotated[list[str] | None, typer.Option(
        "--hospital", help="A hospital the token may see (repeat).")] = None,
    all_hospitals: Annotated[bool, typer.Option("--all-hospitals", help="The token may see every hospital.")] = False,
) -> None:
    """Issue a bearer token (printed once)."""
    from ...cloud.dicomweb import TokenRegistry

    token = TokenRegistry(runtime(ctx).db).add(name=name, hospitals=hospital or [], all_hospitals=all_hospitals)
    typer.echo(f"token: {token}")
    typer.echo("(shown once: store it now; send it as 'Authorization: Bearer <token>')", err=True)


@app.command("list")
def token_list(ctx: typer.Context, as_json: AsJson = False, timezone: Timezone = Settings.timezone) -> None:
    """Every token, live or revoked (never the token itself)."""
    from ...cloud.dicomweb import TokenRegistry

    rows = shown(TokenRegistry(runtime(ctx).db).list(), Zone(timezone), "createdAt", "revokedAt")
    if as_json:
        echo_json(rows)
        return
    emit([dict(r, hospitals="*" if r["allHospitals"] else ",".join(r["hospitals"])) for r in rows], False,
         ["name", "hospitals", "live"])


@app.command("revoke")
def token_revoke(ctx: typer.Context, name: TokenName) -> None:
    """Revoke a live token at once."""
    from ...cloud.dicomweb import TokenRegistry

    TokenRegistry(runtime(ctx).db).revoke(name=name)
    typer.echo(f"token {name} revoked")
