"""`yingyun admin hl7-sender add | list | remove`: who may send HL7 v2 over MLLP (gateway/hl7/)."""

from __future__ import annotations

from typing import Annotated

import typer

from ...gateway.hl7.senders import Hl7Senders
from ..context import runtime
from ..options import AsJson
from ..output import emit

app = typer.Typer(no_args_is_help=True,
                  help="HL7 senders allowed on --hl7-port (sending facility MSH-4 + host), as PACS are for DICOM.")

Facility = Annotated[str, typer.Option("--facility", help="The sending facility, as MSH-4 names it.")]


def _senders(ctx: typer.Context) -> Hl7Senders:
    return Hl7Senders(runtime(ctx).db)


@app.command("add")
def hl7_sender_add(ctx: typer.Context, facility: Facility,
                   host: Annotated[str, typer.Option(
                       "--host", help="Its host name or IP address (messages from elsewhere are refused, AR).")],
                   hospital: Annotated[str, typer.Option("--hospital", help="The hospital its messages are for.")],
                   ) -> None:
    """Let an interface engine (RIS, HIS) send HL7, or change an existing sender."""
    created = _senders(ctx).add(facility=facility, host=host, hospital_id=hospital)
    typer.echo(f"HL7 sender {facility} {'added' if created else 'updated'}")


@app.command("list")
def hl7_sender_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every registered HL7 sender."""
    emit(_senders(ctx).list(), as_json, ["facility", "host", "hospitalId"])


@app.command("remove")
def hl7_sender_remove(ctx: typer.Context, facility: Facility) -> None:
    """Stop accepting a sender; what it sent stays."""
    _senders(ctx).remove(facility=facility)
    typer.echo(f"HL7 sender {facility} removed")
