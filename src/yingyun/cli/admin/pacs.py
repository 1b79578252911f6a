"""`yingyun admin pacs add | list | remove`."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import ALL, save
from ..context import organisation
from ..errors import advise_if_in_use
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True, help="PACS peers allowed to send DICOM (calling AE title + host).")

PacsAe = Annotated[str, typer.Option("--ae-title", help="The PACS's calling AE title.")]


@app.command("add")
def pacs_add(ctx: typer.Context, ae_title: PacsAe,
             host: Annotated[str, typer.Option(
                 "--host", help="Its host name or IP address (associations from elsewhere are rejected).")],
             port: Annotated[int, typer.Option("--port", help="Its DICOM port.")],
             hospital: Annotated[str, typer.Option("--hospital", help="The hospital its images are filed under.")],
             ) -> None:
    """Let a PACS send images (C-STORE) and query (C-FIND), or change an existing one."""
    created, _ = save(organisation(ctx).pacs, PLATFORM, ae_title.strip(),
                      {"host": host, "port": port, "hospitalId": hospital})
    typer.echo(f"PACS {ae_title} {'added' if created else 'updated'}")


@app.command("list")
def pacs_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every registered PACS."""
    emit(organisation(ctx).pacs.list(PLATFORM, ALL).items, as_json, ["aeTitle", "host", "port", "hospitalId"])


@app.command("remove")
def pacs_remove(ctx: typer.Context, ae_title: PacsAe) -> None:
    """Stop accepting a PACS; what it sent stays (a device's AE title goes with the device)."""
    with advise_if_in_use("change or remove the device (`yingyun admin device …`)"):
        organisation(ctx).pacs.remove(PLATFORM, ae_title)
    typer.echo(f"PACS {ae_title} removed")
