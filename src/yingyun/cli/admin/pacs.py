"""`yingyun admin pacs add | list | remove`."""

from __future__ import annotations

from typing import Annotated

import typer

from ...cloud.organisation import PLATFORM
from ...cloud.organisation.nouns import ALL, save
from ..context import organisation, runtime
from ..errors import advise_if_in_use
from ..options import AsJson
from ..output import emit, fail

app = typer.Typer(no_args_is_help=True, help="PACS peers allowed to send DICOM (calling AE title + host).")

PacsAe = Annotated[str, typer.Option("--ae-title", help="The PACS's calling AE title.")]


@app.command("add")
def pacs_add(ctx: typer.Context, ae_title: PacsAe,
             host: Annotated[str, typer.Option(
                 "--host", help="Its host name or IP address (associations from elsewhere are rejected).")],
             port: Annotated[int, typer.Option("--port", help="Its DICOM port.")],
             hospital: Annotated[str, typer.Option("--hospital", help="The hospital its images are filed under.")],
             retrieve: Annotated[str | None, typer.Option(
                 "--retrieve", help="How reconciliation retrieves what a study lacks from it: move (C-MOVE to the "
                                    "gateway's AE title, which the PACS must know; the default) or get (C-GET).")
             ] = None,
             ) -> None:
    """Let a PACS send images (C-STORE) and query (C-FIND), or change an existing one."""
    from ...gateway.heal import RETRIEVE_MODES, set_retrieve

    if retrieve is not None and retrieve not in RETRIEVE_MODES:
        fail("--retrieve is move or get")
    created, _ = save(organisation(ctx).pacs, PLATFORM, ae_title.strip(),
                      {"host": host, "port": port, "hospitalId": hospital})
    if retrieve is not None:
        with runtime(ctx).db.write() as conn:
            set_retrieve(conn, ae_title=ae_title.strip(), retrieve=retrieve)
    typer.echo(f"PACS {ae_title} {'added' if created else 'updated'}")


@app.command("list")
def pacs_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every registered PACS."""
    from ...gateway.heal import retrieve_modes

    with runtime(ctx).db.read() as conn:
        modes = retrieve_modes(conn)
    items = [dict(p, retrieve=modes.get(p["aeTitle"], "move"))
             for p in organisation(ctx).pacs.list(PLATFORM, ALL).items]
    emit(items, as_json, ["aeTitle", "host", "port", "hospitalId", "retrieve"])


@app.command("remove")
def pacs_remove(ctx: typer.Context, ae_title: PacsAe) -> None:
    """Stop accepting a PACS; what it sent stays (a device's AE title goes with the device)."""
    with advise_if_in_use("change or remove the device (`yingyun admin device …`)"):
        organisation(ctx).pacs.remove(PLATFORM, ae_title)
    from ...gateway.heal import forget_peer

    with runtime(ctx).db.write() as conn:
        forget_peer(conn, ae_title=ae_title.strip())
    typer.echo(f"PACS {ae_title} removed")
