"""`yingyun admin letterhead set | show`: a hospital's contact phone and logo on reports and patient pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ... import letterheads
from ..context import runtime
from ..options import AsJson
from ..output import echo_json

app = typer.Typer(no_args_is_help=True,
                  help="Letterheads: the contact phone and logo on a hospital's report PDFs and error pages.")

Hospital = Annotated[str, typer.Option("--hospital", help="Hospital id.")]


@app.command("set")
def letterhead_set(
    ctx: typer.Context,
    hospital: Hospital,
    contact_phone: Annotated[str | None, typer.Option("--contact-phone",
                                                      help="The number patients call, e.g. 0571-87654321.")] = None,
    no_contact_phone: Annotated[bool, typer.Option("--no-contact-phone", help="Show no contact phone.")] = False,
    logo: Annotated[Path | None, typer.Option("--logo", help="PNG or JPEG, at most 512 KB.", exists=True,
                                              dir_okay=False, readable=True)] = None,
    no_logo: Annotated[bool, typer.Option("--no-logo", help="Print no logo.")] = False,
) -> None:
    """Set (or clear) a hospital's contact phone and logo; what is not given stays as it was."""
    rt = runtime(ctx)
    created = letterheads.set_letterhead(rt.db, rt.tenancy, hospital_id=hospital, contact_phone=contact_phone,
                                         clear_contact_phone=no_contact_phone,
                                         logo=logo.read_bytes() if logo else None, clear_logo=no_logo)
    typer.echo(f"letterhead of {hospital} {'added' if created else 'updated'}")


@app.command("show")
def letterhead_show(ctx: typer.Context, hospital: Hospital, as_json: AsJson = False) -> None:
    """A hospital's letterhead."""
    rt = runtime(ctx)
    info = letterheads.describe(rt.db, rt.tenancy, hospital_id=hospital)
    if as_json:
        echo_json(info)
        return
    for k, v in info.items():
        typer.echo(f"{k}: {v if v is not None else '-'}")
