"""`yingyun admin gateway add | list | remove`: hospital gateways of a split deployment."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import ALL, save
from ..context import organisation
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Hospital gateways allowed to forward to this cloud.")

GatewayId = Annotated[str, typer.Option("--id", help="Gateway id: 1-64 of A-Z a-z 0-9 . _ -")]


@app.command("add")
def gateway_add(ctx: typer.Context, id: GatewayId,
                hospital: Annotated[str, typer.Option("--hospital", help="The hospital whose data it forwards.")],
                key: Annotated[str | None, typer.Option(
                    "--key", help="At least 32 characters; generated if omitted.")] = None,
                ) -> None:
    """Register a hospital's gateway (its key is printed once), or change an existing one."""
    created, added = save(organisation(ctx).gateways, PLATFORM, id, {"hospitalId": hospital, "key": key})
    issued = added.get("key")
    typer.echo(f"gateway {id} {'added' if created else 'updated'}")
    if issued:
        typer.echo(f"key: {issued}")
        typer.echo("(shown once: give it to the gateway as --gateway-key)", err=True)


@app.command("list")
def gateway_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every registered gateway."""
    emit(organisation(ctx).gateways.list(PLATFORM, ALL).items, as_json, ["id", "hospitalId"])


@app.command("remove")
def gateway_remove(ctx: typer.Context, id: GatewayId) -> None:
    """Stop accepting a gateway's uploads; what it forwarded stays."""
    organisation(ctx).gateways.remove(PLATFORM, id)
    typer.echo(f"gateway {id} removed")
