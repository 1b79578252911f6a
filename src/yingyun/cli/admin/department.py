"""`yingyun admin department add | list | remove | disable | enable`: the departments of a hospital."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import Query, save
from ..context import organisation
from ..errors import advise_if_in_use
from ..options import AsJson, HospitalFilter
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Departments (科室) of a hospital; a name is unique within it.")

DepartmentId = Annotated[str, typer.Option("--id", help="Department id.")]


@app.command("add")
def department_add(
    ctx: typer.Context,
    hospital: Annotated[str, typer.Option("--hospital", help="The hospital it belongs to.")],
    name: Annotated[str, typer.Option("--name", help="Its name, e.g. 放射科.")],
    id: Annotated[str | None, typer.Option("--id", help="Its id (generated if omitted; given: changes it).")] = None,
) -> None:
    """Add a department, or rename an existing one."""
    created, item = save(organisation(ctx).departments, PLATFORM, id, {"hospitalId": hospital, "name": name})
    typer.echo(f"department {item['id']} {'added' if created else 'updated'}")


@app.command("list")
def department_list(ctx: typer.Context, as_json: AsJson = False, hospital: HospitalFilter = None) -> None:
    """Every department."""
    rows = organisation(ctx).departments.list(PLATFORM, Query(limit=None, hospital_id=hospital)).items
    emit(rows, as_json, ["id", "hospitalId", "name", "enabled"])


@app.command("remove")
def department_remove(ctx: typer.Context, id: DepartmentId) -> None:
    """Remove a department no device is in (else refused, naming them)."""
    with advise_if_in_use(f"move its devices or disable it (`yingyun admin department disable --id {id}`)"):
        organisation(ctx).departments.remove(PLATFORM, id)
    typer.echo(f"department {id} removed")


@app.command("disable")
def department_disable(ctx: typer.Context, id: DepartmentId) -> None:
    """Mark a department disabled (the console offers it no more); nothing is deleted."""
    organisation(ctx).departments.update(PLATFORM, id, {"enabled": False})
    typer.echo(f"department {id} disabled")


@app.command("enable")
def department_enable(ctx: typer.Context, id: DepartmentId) -> None:
    """Enable a disabled department again."""
    organisation(ctx).departments.update(PLATFORM, id, {"enabled": True})
    typer.echo(f"department {id} enabled")
