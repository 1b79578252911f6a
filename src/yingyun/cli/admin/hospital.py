"""`yingyun admin hospital add | list | remove | disable | enable`."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import ALL, save
from ..context import organisation
from ..errors import advise_if_in_use
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="Hospitals: every study, image and report belongs to one.")

HospitalId = Annotated[str, typer.Option(
    "--id", help="Hospital id: 1-64 of A-Z a-z 0-9 . _ - (names its archive folders).")]


@app.command("add")
def hospital_add(ctx: typer.Context, id: HospitalId,
                 name: Annotated[str, typer.Option("--name", help="Display name (patients see it).")],
                 union: Annotated[str | None, typer.Option("--union", help="The union it belongs to.")] = None) -> None:
    """Add a hospital, or change an existing one's name or union."""
    created, _ = save(organisation(ctx).hospitals, PLATFORM, id, {"name": name, "unionId": union})
    typer.echo(f"hospital {id} {'added' if created else 'updated'}")


@app.command("list")
def hospital_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every hospital."""
    emit(organisation(ctx).hospitals.list(PLATFORM, ALL).items, as_json, ["id", "name", "unionId", "enabled"])


@app.command("remove")
def hospital_remove(ctx: typer.Context, id: HospitalId) -> None:
    """Remove a hospital that holds nothing (else refused, naming what holds it: disable it instead)."""
    with advise_if_in_use(f"disable it instead (`yingyun admin hospital disable --id {id}`)"):
        organisation(ctx).hospitals.remove(PLATFORM, id)
    typer.echo(f"hospital {id} removed")


@app.command("disable", help="Stop taking its data (RIS calls 20010, C-STORE and STOW refused); "
                              "its patient pages say so. Nothing is deleted.")
def hospital_disable(ctx: typer.Context, id: HospitalId) -> None:
    organisation(ctx).hospitals.update(PLATFORM, id, {"enabled": False})
    typer.echo(f"hospital {id} disabled")


@app.command("enable")
def hospital_enable(ctx: typer.Context, id: HospitalId) -> None:
    """Take a disabled hospital's data again and open its patient pages."""
    organisation(ctx).hospitals.update(PLATFORM, id, {"enabled": True})
    typer.echo(f"hospital {id} enabled")


@app.command("ris-report-url")
def hospital_ris_report_url(
        ctx: typer.Context, id: HospitalId,
        url: Annotated[str | None, typer.Option("--url", help="Where its final reports are POSTed (signed, "
                                                               "/ris/report/add fields).")] = None,
        clear: Annotated[bool, typer.Option("--clear", help="Back to --ris-report-url of the server.")] = False,
) -> None:
    """The hospital's own RIS URL for final reports (over the server's --ris-report-url)."""
    from ...gateway.delivery import set_ris_url
    from ..context import runtime
    from ..output import fail

    if (url is None) == (not clear):
        fail("give --url URL or --clear")
    set_ris_url(runtime(ctx).db, hospital_id=id, url=url)
    typer.echo(f"hospital {id}: final reports to {url}" if url else f"hospital {id}: final reports to the default")

