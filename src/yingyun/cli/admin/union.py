"""`yingyun admin union add | list | remove`."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import ALL, save
from ..context import organisation
from ..errors import advise_if_in_use
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Medical unions (医联体): groups of hospitals a partner may be granted.")

UnionId = Annotated[str, typer.Option("--id", help="Union id: 1-64 of A-Z a-z 0-9 . _ -")]


@app.command("add")
def union_add(ctx: typer.Context, id: UnionId,
              name: Annotated[str, typer.Option("--name", help="Display name.")]) -> None:
    """Add a union, or rename an existing one."""
    created, _ = save(organisation(ctx).unions, PLATFORM, id, {"name": name})
    typer.echo(f"union {id} {'added' if created else 'updated'}")


@app.command("list")
def union_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every union."""
    emit(organisation(ctx).unions.list(PLATFORM, ALL).items, as_json, ["id", "name"])


@app.command("remove")
def union_remove(ctx: typer.Context, id: UnionId) -> None:
    """Remove a union no hospital belongs to and no partner is granted (else refused, naming them)."""
    with advise_if_in_use("move its hospitals to another union (`yingyun admin hospital add --id ID --name NAME "
                          "--union OTHER`) and change those partners' grants first"):
        organisation(ctx).unions.remove(PLATFORM, id)
    typer.echo(f"union {id} removed")
