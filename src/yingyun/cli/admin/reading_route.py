"""`yingyun admin reading-route add | list | remove`: which reading centre reads a hospital's studies."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.reading import routes
from ...cloud.staff.edge import OPERATOR, Caller, Role
from ..context import runtime
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True,
                  help="Reading routes (远程诊断): a hospital's studies, of one modality or all, read by a reading "
                       "centre.")

# The command line acts as the platform's operator: the server's own files are its credential.
COMMAND_LINE = Caller(username="(cli)", name="command line", roles=(Role(OPERATOR, "platform", None),))


@app.command("add")
def route_add(
    ctx: typer.Context,
    from_hospital: Annotated[str, typer.Option("--from-hospital", help="The hospital whose studies are read.")],
    to_hospital: Annotated[str, typer.Option("--to-hospital", help="The reading centre (a hospital; may be itself).")],
    modality: Annotated[str | None, typer.Option("--modality", help="Only this modality (e.g. CT); "
                                                                    "without it, every other one.")] = None,
) -> None:
    """Route a hospital's studies to a reading centre (the route naming the study's modality wins)."""
    with runtime(ctx).db.write() as conn:
        route = routes.add_route(conn, caller=COMMAND_LINE, from_hospital_id=from_hospital,
                                 to_hospital_id=to_hospital, modality=modality)
    typer.echo(f"reading route {route.id} added: {route.from_hospital_id} -> {route.to_hospital_id}"
               f" ({route.modality or 'every modality'})")


@app.command("list")
def route_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every reading route."""
    with runtime(ctx).db.read() as conn:
        rows = [r.as_json() for r in routes.list_routes(conn, caller=COMMAND_LINE)]
    emit(rows, as_json, ["id", "fromHospitalId", "toHospitalId", "modality", "createdBy"])


@app.command("remove")
def route_remove(ctx: typer.Context, id: Annotated[str, typer.Option("--id", help="The route's id.")]) -> None:
    """Remove a reading route (the hospital's studies then follow the next most specific one)."""
    with runtime(ctx).db.write() as conn:
        routes.remove_route(conn, caller=COMMAND_LINE, route_id=id)
    typer.echo(f"reading route {id} removed")
